"""Which share of the sweep this process does: its rank among the processes that torchrun or srun
started (joined by a gloo group, for barriers), or its task in a Slurm job array (independent)."""
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mmagic_vico.utils.errors import InvalidValueError

#: Variables of the launcher that a job's own training process must not see: it trains alone.
LAUNCHER_VARIABLES = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'GROUP_RANK', 'GROUP_WORLD_SIZE',
                      'ROLE_RANK', 'ROLE_NAME', 'ROLE_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')


@dataclass
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    grouped: bool = False  # a process group joins the ranks; False: each does its share alone

    def share(self, items) -> list:
        """This rank's items: every ``world``-th, from its rank (disjoint, together all of them)."""
        return list(items)[self.rank::self.world]

    def barrier(self) -> None:
        if self.grouped:
            dist.barrier()

    def all_ok(self, ok: bool) -> bool:
        """Whether every rank of the group is ``ok`` (a rank that stops alone would leave the others waiting
        at the next barrier until the timeout)."""
        if not self.grouped:
            return ok
        flag = torch.tensor([int(bool(ok))])
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    @property
    def device(self) -> str:
        return f'cuda:{self.local_rank}' if torch.cuda.is_available() else 'cpu'

    def child_env(self, repo: str) -> dict:
        """The environment of a job's training process: this package first, this rank's GPU only, no launcher."""
        env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES and not k.startswith('TORCHELASTIC')}
        env['PYTHONPATH'] = os.pathsep.join(p for p in (repo, env.get('PYTHONPATH')) if p)
        if torch.cuda.is_available():
            visible = os.environ.get('CUDA_VISIBLE_DEVICES')
            devices = visible.split(',') if visible else [str(i) for i in range(torch.cuda.device_count())]
            env['CUDA_VISIBLE_DEVICES'] = devices[self.local_rank % len(devices)]
        return env

    def close(self) -> None:
        if self.grouped and dist.is_initialized():
            dist.destroy_process_group()


def join(launcher: str, timeout_hours: float = 72.0) -> Ranks:
    """This process's place: ``'none'`` (alone, or a task of a Slurm job array), ``'pytorch'`` (torchrun:
    RANK, WORLD_SIZE, MASTER_ADDR...) or ``'slurm'`` (srun; mmengine reads SLURM_PROCID, SLURM_NTASKS...).
    The barriers wait for the slowest rank's trainings: ``timeout_hours`` bounds them."""
    timeout = datetime.timedelta(hours=timeout_hours)
    if launcher == 'none':
        task = os.environ.get('SLURM_ARRAY_TASK_ID')
        if task is None:
            return Ranks()
        first = int(os.environ.get('SLURM_ARRAY_TASK_MIN', 0))
        return Ranks(int(task) - first, int(os.environ['SLURM_ARRAY_TASK_COUNT']))
    if launcher == 'pytorch':
        dist.init_process_group('gloo', timeout=timeout)  # gloo: the barriers carry no tensors of the GPUs
    elif launcher == 'slurm':
        if not torch.cuda.is_available():
            raise InvalidValueError('--launcher slurm: mmengine pins one GPU per task and this node has none; on CPU '
                                    'nodes run a job array instead (tools/slurm_dreambench.sh, --launcher none).')
        from mmengine.dist import init_dist
        init_dist('slurm', backend='gloo', timeout=timeout.total_seconds())
    else:
        raise InvalidValueError(f'--launcher {launcher!r}: use none, pytorch (torchrun) or slurm (srun).')
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get('LOCAL_RANK', 0)), grouped=True)
