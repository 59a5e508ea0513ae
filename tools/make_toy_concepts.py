"""Render the toy DreamBench: 6 novel concepts (data/toybench/<concept>/*.png, 5 photos each, 64 px), their
prompts_and_classes.txt in DreamBench's own format, so tools/evaluate.py and tools/compare.py read it, and
scorers.json naming the pixel scorers that measure context and subject fidelity on it
(mmagic_vico/toyworld/fidelity.py).

    python tools/make_toy_concepts.py [--out data/toybench] [--photos 5]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data'))

from mmagic_vico.utils import checks  # noqa: E402
from mmagic_vico.utils.cli import add_debug_flag, positive_int  # noqa: E402
from mmagic_vico.utils.errors import run_tool  # noqa: E402


def prompt_templates() -> list:
    """Re-contextualisation prompts: the world's backgrounds (its only property is a colour, which is the
    concept's identity here, so there are no property-change prompts)."""
    from mmagic_vico.toyworld.world import BACKGROUND_PHRASES
    return ["'a {0} {1} %s'.format(unique_token, class_token)," % p for p in BACKGROUND_PHRASES.values()]


def photo_scenes(name: str, photos: int, seed: int = 0):
    """``photos`` scenes of one concept on distinct backgrounds, each with its own pose."""
    import numpy as np

    from mmagic_vico.toyworld.render import Scene
    from mmagic_vico.toyworld.world import BACKGROUND_NAMES
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    backgrounds = rng.permutation(BACKGROUND_NAMES)[:photos]
    return [Scene(str(b), name, 'none', int(rng.integers(2 ** 31, 2 ** 32))) for b in backgrounds]


def write_protocol(path: str, classes: dict) -> None:
    lines = ['Classes', '', 'subject_name,class'] + [f'{s},{c}' for s, c in classes.items()]
    prompts = ['prompt_list = ['] + prompt_templates() + [']']
    lines += ['', 'Prompts', '', 'Object Prompts', ''] + prompts + ['', 'Live Subject Prompts', ''] + prompts
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')


def main(argv=None):
    from PIL import Image

    from mmagic_vico.toyworld.concepts import CONCEPTS, concept_objects
    from mmagic_vico.toyworld.fidelity import SCORERS_FILE
    from mmagic_vico.toyworld.render import render_scene
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default=os.path.join(DATA, 'toybench'))
    p.add_argument('--photos', type=positive_int, default=5)
    add_debug_flag(p)
    args = p.parse_args(argv)
    from mmagic_vico.toyworld.world import BACKGROUND_NAMES
    if args.photos > len(BACKGROUND_NAMES):  # one background per photo
        p.error(f'--photos {args.photos}: at most {len(BACKGROUND_NAMES)}, one per background of the world')
    checks.output_dir(args.out, '--out')
    objects = concept_objects()
    for name in CONCEPTS:
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        for i, scene in enumerate(photo_scenes(name, args.photos)):
            Image.fromarray(render_scene(scene, objects=objects)[0]).save(os.path.join(folder, f'{i:02d}.png'))
    write_protocol(os.path.join(args.out, 'prompts_and_classes.txt'), {n: c for n, (c, _) in CONCEPTS.items()})
    scorers = {k: os.path.relpath(os.path.join(DATA, f), os.path.abspath(args.out)).replace(os.sep, '/')
               for k, f in (('world', 'toyworld_scorer.safetensors'), ('subject', 'toybench_scorer.safetensors'))}
    with open(os.path.join(args.out, SCORERS_FILE), 'w', encoding='utf-8') as f:
        json.dump(scorers, f, indent=1)
        f.write('\n')
    print(f'wrote {len(CONCEPTS)} concepts x {args.photos} photos and prompts_and_classes.txt to '
          f'{os.path.normpath(args.out)}, with {SCORERS_FILE}')
    return 0


if __name__ == '__main__':
    run_tool(main)
