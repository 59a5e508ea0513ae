"""The web demo: pick or upload photos of a subject, train it with live previews, generate a gallery.

    python tools/demo.py                                   # ViCo on the toy-world base, http://127.0.0.1:7860
    python tools/demo.py --pretrained-model /data/sd15     # real Stable Diffusion 1.5 (configs/vico/vico.py)
    python tools/demo.py --config configs/textual_inversion/textual_inversion_tiny.py --concepts /data/dreambench
"""
import argparse
import os

os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')  # no calls home from an offline machine

from mmagic_vico.utils import checks  # noqa: E402
from mmagic_vico.utils.cli import add_debug_flag, device, port, positive_int  # noqa: E402
from mmagic_vico.utils.errors import MissingFileError, run_tool  # noqa: E402
from mmagic_vico.utils.logging import add_verbose_flag, setup_logging  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', help='method config (default: configs/vico/vico_toy.py, the toy-world base, or '
                   'configs/vico/vico.py with --pretrained-model)')
    p.add_argument('--pretrained-model', help='Stable Diffusion 1.5: a local diffusers folder, a single-file SD 1.x '
                   'checkpoint (.safetensors / .ckpt) or a hub id')
    p.add_argument('--concepts', nargs='+', default=['data/toybench', 'data/vico'],
                   help='folders whose sub-folders are example concepts to pick (e.g. a DreamBench download)')
    p.add_argument('--work-dir', default=os.path.join('work_dirs', 'demo'), help='one folder per training run here')
    p.add_argument('--preview-steps', type=positive_int,
                   help='sampling steps of the live previews (default: the config\'s)')
    p.add_argument('--host', default='127.0.0.1', help='0.0.0.0 to serve other machines')
    p.add_argument('--port', type=port,
                   help='default: 7860 or the next free one (GRADIO_SERVER_PORT moves the start)')
    p.add_argument('--device', type=device, help='generation device (default: cuda if available)')
    add_verbose_flag(p)
    add_debug_flag(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logging(args.verbose)
    from mmagic_vico.utils import register_all_modules
    from mmagic_vico.utils.config import load_config
    register_all_modules()
    config = args.config or os.path.join('configs', 'vico', 'vico.py' if args.pretrained_model else 'vico_toy.py')
    options = {'model.pretrained_model': args.pretrained_model} if args.pretrained_model else None
    load_config(config, options)  # before the page starts: a missing config or a bad option is named here
    missing = [c for c in args.concepts if not os.path.isdir(c)]
    if missing:
        raise MissingFileError(f'--concepts {missing} do not exist; give folders whose sub-folders hold photos of '
                               'example concepts (e.g. data/vico, or a DreamBench download).')
    checks.output_dir(args.work_dir, '--work-dir')
    from mmagic_vico.demo.app import CSS, THEME, build_app
    from mmagic_vico.demo.session import DemoSession
    from mmagic_vico.models.sd_loading import resolve_pretrained
    if args.pretrained_model:
        resolve_pretrained(args.pretrained_model)
    session = DemoSession(config, options, work_root=args.work_dir, device=args.device)
    app = build_app(session, args.concepts, args.preview_steps)
    app.queue().launch(server_name=args.host, server_port=args.port, share=False, theme=THEME, css=CSS, quiet=True,
                       allowed_paths=[os.path.abspath(c) for c in args.concepts] + [session.work_root],
                       prevent_thread_lock=True)  # quiet: no hint about share links, which do not apply here
    print(f'* Running on local URL:  {app.local_url}  (Ctrl+C stops the demo)', flush=True)
    app.block_thread()


if __name__ == '__main__':
    run_tool(main)
