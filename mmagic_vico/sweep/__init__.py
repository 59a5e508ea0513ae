from mmagic_vico.utils.manifest import weights_sha256
from .jobs import Job, make_jobs, subject_options
from .ranks import Ranks, join
from .records import read_record, write_record
from .sweep import DreamBenchSweep

__all__ = ['DreamBenchSweep', 'Job', 'make_jobs', 'subject_options', 'Ranks', 'join', 'read_record', 'weights_sha256',
           'write_record']
