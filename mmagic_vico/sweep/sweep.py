"""The DreamBench sweep: every (method, subject) job trained with tools/train.py, its images generated in
batches, scored, and one table written. What is done is skipped (its record says what made it), so an
interrupted sweep continues where it stopped; what other settings made is refused (or, with
``overwrite``, removed and made again), and a job's folder is locked while a sweep works on it. Over
several processes (:mod:`.ranks`) the trainings and the scorings are shared by job and the generation
by infer call, with a barrier between the phases."""
import contextlib
import os
import shutil
import subprocess
import sys
import warnings
from itertools import groupby

import torch

from mmagic_vico.evaluation.batching import generation_calls, image_name
from mmagic_vico.evaluation.cli import write_report
from mmagic_vico.evaluation.evaluator import claim_images, metric_names, scores_table, thumbnails
from mmagic_vico.registry import MODELS
from mmagic_vico.utils.atomic import atomic_save_image, atomic_write_bytes
from mmagic_vico.utils.errors import ConflictError, TrainingStoppedError
from mmagic_vico.utils.image import make_grid
from mmagic_vico.utils.lock import folder_lock
from mmagic_vico.utils.manifest import readable_image, weights_sha256
from .ranks import Ranks
from .records import read_record, write_record


class DreamBenchSweep:
    """``jobs`` (method-major) with ``evaluator``'s protocol and scorers; ``sampling``: ``num_images``,
    ``seed``, ``num_inference_steps``, ``guidance_scale``, ``height``, ``width``; ``batch_size``: images
    per infer call; ``train_script``: tools/train.py, run once per job in a process of its own."""

    def __init__(self, jobs: list, evaluator, scorers: dict, sampling: dict, batch_size: int, work_dir: str,
                 train_script: str, repo: str, ranks: Ranks | None = None, overwrite: bool = False):
        self.all_jobs, self.evaluator, self.scorers, self.sampling = jobs, evaluator, dict(scorers), dict(sampling)
        self.batch_size, self.work_dir, self.train_script, self.repo = batch_size, work_dir, train_script, repo
        self.ranks, self.overwrite = ranks or Ranks(), overwrite
        # a task of a job array does whole jobs alone; processes joined by a group share every phase
        self.jobs = jobs if self.ranks.grouped else self.ranks.share(jobs)
        self.share = self.ranks if self.ranks.grouped else Ranks()

    def log(self, message: str) -> None:
        prefix = f'[rank {self.ranks.rank}/{self.ranks.world}] ' if self.ranks.world > 1 else ''
        print(prefix + message, file=sys.stderr, flush=True)

    # ---------------------------------------------------------------- records
    def scores_made_by(self, job, trained: dict) -> dict:
        return dict(weights_sha256=trained['weights_sha256'], prompts=self.evaluator.protocol.text_prompts(job.subject),
                    **self.scorers, **self.sampling)

    def scored(self, job, trained: dict | None) -> dict | None:
        if trained is None:
            return None
        return read_record(job.scores_record, self.scores_made_by(job, trained),
                           f'{job.scores_record} (and {job.images_dir} if the images changed)')

    def claim_images(self, job, trained: dict, write: bool = True) -> None:
        """The job's images are reused only if its weights, config and this sampler made them (their manifest)."""
        sampling = {k: v for k, v in self.sampling.items() if k not in ('num_images', 'seed')}
        claim_images(job.images_dir, job.cfg.model, job.subject, trained['weights_sha256'], self.sampling['seed'],
                     sampling, fix=f'Delete {job.images_dir} to make them again, give another --work-dir, or pass '
                                   '--overwrite.', write=write)

    def state(self, job) -> dict | None:
        """The job's training record (None: to train), after checking that everything in its folder was made
        by this request: a :class:`ConflictError` names what another request made."""
        trained = job.trained()
        if trained is None:
            job.check_unfinished_training()
            stale = job.stale_outputs()
            if stale:
                raise ConflictError(f'{stale[:4]} were made by weights that are not (or no longer) recorded as '
                                    'trained. Nothing was changed: delete them (they would be mixed with new images) '
                                    'or pass --overwrite, then run again.')
        elif self.scored(job, trained) is None:
            self.claim_images(job, trained, write=False)
        return trained

    def remove_conflicting(self) -> None:
        """``overwrite``: the folder of every job that other settings made is emptied, named in a warning."""
        for job in self.jobs:
            try:
                self.state(job)
            except ConflictError as err:
                names = [n for n in os.listdir(job.folder) if n != '.lock']
                for name in names:
                    path = os.path.join(job.folder, name)
                    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
                warnings.warn(f'--overwrite: removed {job.folder} ({", ".join(sorted(names))}): {err}')

    @contextlib.contextmanager
    def locked(self):
        """Each job's folder locked while this sweep works on it (by rank 0 for a group, else by the process
        that does the job); a live sweep in one of them stops every rank before any work."""
        with contextlib.ExitStack() as stack:
            error = None
            if self.ranks.rank == 0 or not self.ranks.grouped:
                try:
                    for job in self.jobs:
                        stack.enter_context(folder_lock(job.folder, 'a DreamBench sweep'))
                except ConflictError as err:
                    error = err
            if not self.share.all_ok(error is None):
                raise error or ConflictError('rank 0 found a job folder in use by another DreamBench sweep (its '
                                             'message names it); nothing was changed.')
            yield

    # ---------------------------------------------------------------- phases
    def run(self) -> dict | None:
        """Train, generate, score what is not done; the table (rank 0, once every job is scored)."""
        with self.locked():
            if self.overwrite and (self.ranks.rank == 0 or not self.ranks.grouped):
                self.remove_conflicting()
            self.share.barrier()
            return self.run_locked()

    def run_locked(self) -> dict | None:
        trained = {job.name: self.state(job) for job in self.jobs}  # every rank reads the records before any writes
        todo = [job for job in self.jobs if self.scored(job, trained[job.name]) is None]
        self.log(f'{len(self.jobs) - len(todo)} of {len(self.jobs)} job(s) done; '
                 f'{sum(trained[j.name] is None for j in todo)} to train, {len(todo)} to evaluate')
        self.share.barrier()
        for job in self.share.share([job for job in todo if trained[job.name] is None]):
            self.train(job)
        self.share.barrier()
        trained.update({job.name: job.trained() for job in todo})
        for job in todo:  # one process writes each manifest; the others check it
            self.claim_images(job, trained[job.name], write=self.ranks.rank == 0 or not self.ranks.grouped)
        self.share.barrier()
        self.generate(todo)
        self.share.barrier()
        for job in self.share.share(todo):
            self.score(job, trained[job.name])
        self.share.barrier()
        return self.table() if self.ranks.rank == 0 or not self.ranks.grouped else None

    def train(self, job) -> dict:
        """tools/train.py on the job's config (written beside it), resuming from its last checkpoint."""
        atomic_write_bytes(job.config_file, job.cfg.pretty_text.encode())
        self.log(f'{job.name}: training {job.made_by["steps"]} iterations in {job.train_dir} (resumes its last '
                 'checkpoint, if any)')
        command = [sys.executable, self.train_script, job.config_file, '--work-dir', job.train_dir, '--resume']
        code = subprocess.run(command, env=self.ranks.child_env(self.repo)).returncode
        if code or not os.path.isfile(job.weights):
            raise TrainingStoppedError(f'training {job.name} failed (exit code {code}; its message is above, its log '
                                       f'in {job.train_dir}). Fix the cause and run the same command again: finished '
                                       'jobs are skipped and this one resumes from its last checkpoint.')
        stat = os.stat(job.weights)
        return write_record(job.train_record, job.made_by, weights=os.path.basename(job.weights),
                            weights_sha256=weights_sha256(job.weights), weights_size=stat.st_size,
                            weights_mtime_ns=stat.st_mtime_ns)

    @torch.no_grad()
    def generate(self, jobs: list) -> None:
        """The images of ``jobs``: every infer call of every job, this rank's share of them."""
        n, seed = self.sampling['num_images'], self.sampling['seed']
        sampling = {k: v for k, v in self.sampling.items() if k not in ('num_images', 'seed')}
        def missing(job, call) -> int:  # an unreadable image too (the process of its call makes it again)
            return sum(not readable_image(os.path.join(job.images_dir, image_name(p, k))) for p, k in call.items())

        calls = [(job, call) for job in jobs for call in
                 generation_calls(len(self.evaluator.protocol.text_prompts(job.subject)), n, self.batch_size)
                 if missing(job, call)]  # the calls are the same whoever makes them: share only what is left
        for _, method_calls in groupby(self.share.share(calls), key=lambda item: item[0].method):
            method_calls = list(method_calls)
            model = MODELS.build(method_calls[0][0].cfg.model).to(self.evaluator.device).eval()  # once per method
            for _, job_calls in groupby(method_calls, key=lambda item: item[0].name):
                job_calls = list(job_calls)
                job = job_calls[0][0]
                if job.weights:
                    model.load_weights(job.weights)
                self.log(f'{job.name}: generating {sum(missing(job, c) for _, c in job_calls)} image(s)')
                self.evaluator.generate(model, job.subject, job.images_dir, n, seed, calls=[c for _, c in job_calls],
                                        **sampling)
            del model

    def score(self, job, trained: dict) -> dict:
        prompts = len(self.evaluator.protocol.text_prompts(job.subject))
        n = self.sampling['num_images']
        paths = [os.path.join(job.images_dir, image_name(p, k)) for p in range(prompts) for k in range(n)]
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise RuntimeError(f'{job.name}: {len(missing)} image(s) were not generated ({missing[:2]}); run again.')
        scores = self.evaluator.score(job.subject, paths, n)
        self.log(f'{job.name}: ' + ', '.join(f'{k} {scores[k]:.3f}' for k in metric_names([scores])))
        return write_record(job.scores_record, self.scores_made_by(job, trained), scores=scores)

    # ---------------------------------------------------------------- the table
    def method_grid(self, subject: str, jobs: list, prompts: int = 8) -> str:
        """``subjects/<subject>.png``: a row per method (its name under it), the first image of each of the
        first ``prompts`` prompts (the same seed in every row), tiles of at most 256 px."""
        count = min(prompts, len(self.evaluator.protocol.text_prompts(subject)))
        tiles = thumbnails([os.path.join(job.images_dir, image_name(p, 0)) for job in jobs for p in range(count)])
        path = os.path.join(self.work_dir, 'subjects', f'{subject}.png')
        atomic_save_image(path, make_grid(tiles, count, [job.method for job in jobs]))
        return path

    def table(self) -> dict | None:
        """``dreambench.md`` / ``.json`` (method rows: the mean over subjects), ``subjects/<subject>.md``
        (method rows) and ``subjects/<subject>.png`` (:meth:`method_grid`) from every job's scores; None while
        some job is not scored (another array task's)."""
        records = {job.name: self.scored(job, job.trained(verify=False)) for job in self.all_jobs}
        waiting = [name for name, record in records.items() if record is None]
        if waiting:
            self.log(f'{len(waiting)} job(s) not scored yet ({waiting[:3]}...): the table is written when they are '
                     '(run the same command once more after the other tasks, without the array).')
            return None
        methods = list(dict.fromkeys(job.method for job in self.all_jobs))
        subjects = list(dict.fromkeys(job.subject for job in self.all_jobs))
        per_method = {m: {j.subject: records[j.name]['scores'] for j in self.all_jobs if j.method == m}
                      for m in methods}
        overall = {m: {k: sum(s[k] for s in per_method[m].values()) / len(per_method[m])
                       for k in metric_names(per_method[m].values())}
                   for m in methods}
        for subject in subjects:
            rows = {m: per_method[m][subject] for m in methods}
            path = os.path.join(self.work_dir, 'subjects', f'{subject}.md')
            atomic_write_bytes(path, (f'# {subject}\n\n' + scores_table(rows, first='method') + '\n').encode())
            self.method_grid(subject, [j for j in self.all_jobs if j.subject == subject])
        table = scores_table(overall, first='method')
        table += (f'\n\nMean over {len(subjects)} subject(s) ({", ".join(subjects)}), '
                  f'{self.sampling["num_images"]} image(s) x {len(self.evaluator.protocol.object_prompts)} prompts '
                  'each; per subject in subjects/<subject>.md (.png: a row of images per method) and dreambench.json.')
        report = dict(methods={m: dict(overall=overall[m], subjects=per_method[m]) for m in methods},
                      jobs={name: record['made_by'] for name, record in records.items()})
        write_report(report, self.work_dir, 'dreambench', table)
        return report
