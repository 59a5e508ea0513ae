"""Train the toy-world base model (docs/toyworld.md): render -> vae -> encode -> unet, resumable.

    python tools/train_toy_base.py RUN_DIR                     # every stage not done yet, then stop
    python tools/train_toy_base.py RUN_DIR --max-minutes 170   # stop the UNet stage cleanly after that
    python tools/train_toy_base.py RUN_DIR --export data/toyworld_sd15   # ship the EMA weights (fp16)
    python tools/train_toy_base.py RUN_DIR --init-from data/toyworld_sd15  # a new machine: continue from
                                                                          # the shipped (fp16) snapshot

Each stage writes into RUN_DIR and is skipped when its output exists; the UNet stage checkpoints
every --checkpoint-minutes and continues from its last checkpoint exactly as an uninterrupted run.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from mmagic_vico.utils import checks  # noqa: E402
from mmagic_vico.utils.cli import add_debug_flag, finite_number, non_negative_int, positive_int, seed  # noqa: E402
from mmagic_vico.utils.errors import MissingFileError, run_tool  # noqa: E402
from mmagic_vico.utils.lock import folder_lock  # noqa: E402
from mmagic_vico.utils.manifest import claim  # noqa: E402

minutes = finite_number(1e-3, hint='e.g. 10')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('run_dir')
    p.add_argument('--scenes', type=positive_int, default=60000, help='training scenes to render')
    p.add_argument('--unet-steps', type=positive_int, default=9814,
                   help='the shipped data/toyworld_sd15 is the EMA at step 9,814 (its gates hold there)')
    p.add_argument('--batch-size', type=positive_int, default=32)
    p.add_argument('--lr', type=finite_number(1e-12, hint='5e-4 is the default'), default=5e-4)
    p.add_argument('--seed', type=seed, default=0)
    p.add_argument('--threads', type=positive_int, default=2, help='at most this many (one while the machine is busy)')
    p.add_argument('--checkpoint-minutes', type=minutes, default=10.0)
    p.add_argument('--max-minutes', type=minutes, default=None, help='stop the UNet stage after this long')
    p.add_argument('--gate-every', type=non_negative_int, default=0,
                   help='measure the gates at every Nth checkpoint (0: never)')
    p.add_argument('--init-from', metavar='FOLDER',
                   help='with no UNet checkpoint in RUN_DIR: continue from this exported pipeline (its '
                        'training_state.json step), e.g. the snapshot shipped in data/toyworld_sd15')
    p.add_argument('--export', metavar='FOLDER', help='write the EMA pipeline of RUN_DIR in fp16 to FOLDER and stop')
    add_debug_flag(p)
    args = p.parse_args(argv)
    if args.export:
        if not os.path.isfile(os.path.join(args.run_dir, 'pipeline', 'model_index.json')):
            raise MissingFileError(f'--export: RUN_DIR {args.run_dir!r} has no pipeline/ to export yet; give the '
                                   'folder of a run whose UNet stage has written a checkpoint.')
        checks.output_dir(args.export, '--export')
        return run(args)  # reads RUN_DIR only: no lock (a snapshot of a live training is exported this way)
    if args.init_from and not os.path.isfile(os.path.join(args.init_from, 'training_state.json')):
        raise MissingFileError(f'--init-from {args.init_from!r} is not a snapshot of this training (no '
                               'training_state.json): give a folder that --export wrote, e.g. data/toyworld_sd15.')
    checks.output_dir(args.run_dir, 'RUN_DIR')
    with folder_lock(args.run_dir, 'a toy-world base training'):  # one live run per folder
        return run(args)


def run_record(args) -> dict:
    """What a run's files depend on (a resume with other values would mix two trainings); --unet-steps
    may grow, and --threads, --checkpoint-minutes, --max-minutes change no number."""
    from mmagic_vico.toyworld import base_model as bm
    return dict(what='toy-world base training', scenes=args.scenes, batch_size=args.batch_size, lr=args.lr,
                seed=args.seed, vae_phases=bm.VAE_PHASES, unet_phases=bm.UNET_PHASES)


def run(args):
    from mmagic_vico.toyworld import base_model as bm
    torch.set_num_threads(args.threads)
    os.makedirs(args.run_dir, exist_ok=True)
    log_path = os.path.join(args.run_dir, 'train.log')

    def log(msg):
        line = f'{time.strftime("%Y-%m-%d %H:%M:%S")} {msg}'
        print(line, flush=True)
        with open(log_path, 'a') as f:
            f.write(line + '\n')

    if args.export:
        from mmagic_vico.toyworld.ship import export_fp16
        export_fp16(os.path.join(args.run_dir, 'pipeline'), args.export)
        log(f'exported {args.run_dir}/pipeline to {args.export} (fp16)')
        return 0

    claim(args.run_dir, run_record(args), 'the toy-world base training',
          'Continue it with the settings it was started with (RUN_DIR/.manifest.json), or give another RUN_DIR.')
    log(f'args: {vars(args)}')
    data = os.path.join(args.run_dir, 'data.npz')
    if not os.path.exists(data):
        bm.render_dataset(data, args.scenes, args.seed, log=log)
    if args.init_from and not os.path.isdir(os.path.join(args.run_dir, 'vae')):
        import shutil
        shutil.copytree(os.path.join(args.init_from, 'vae'), os.path.join(args.run_dir, 'vae'))
        log(f'vae: the snapshot\'s ({args.init_from}/vae)')
    if not os.path.isdir(os.path.join(args.run_dir, 'vae')):
        bm.train_vae(args.run_dir, seed=args.seed, checkpoint_minutes=args.checkpoint_minutes,
                     log=log, max_threads=args.threads)
    if not os.path.exists(os.path.join(args.run_dir, 'latents.npz')):
        bm.encode_dataset(args.run_dir, log=log)

    on_checkpoint = None
    if args.gate_every:
        from mmagic_vico.toyworld.gates import log_base_gates
        counter = {'n': 0}

        def on_checkpoint(step):
            counter['n'] += 1
            if counter['n'] % args.gate_every == 0:
                log_base_gates(os.path.join(args.run_dir, 'pipeline'), step, log)

    bm.train_unet(args.run_dir, steps=args.unet_steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                  checkpoint_minutes=args.checkpoint_minutes, on_checkpoint=on_checkpoint, log=log,
                  max_minutes=args.max_minutes, max_threads=args.threads, init_from=args.init_from)
    return 0


if __name__ == '__main__':
    run_tool(main)
