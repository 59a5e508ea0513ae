"""The toy-world base model's gates, measured by the scorer (docs/toyworld.md).

- VAE: reconstructions of renders keep background, class and colour (>= 0.95 each).
- Base model, seen triples: samples of "a photo of a {colour} {class} {background}" from the stock
  ``StableDiffusionPipeline`` (DDIM) show that background (>= 0.90), colour and class (>= 0.80).
- Held-out triples: within 0.10 of the seen figures.
"""
import os
import random
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .render import Scene
from .scorer import ToyScorer, accuracy
from .world import all_triples, caption, evaluation_scenes

VAE_GATE = 0.95
BASE_GATES = {'background': 0.90, 'colour': 0.80, 'class': 0.80}
HELD_OUT_MARGIN = 0.10


def expected_labels(scenes: Sequence[Scene]) -> Dict[str, List[str]]:
    return {'background': [s.background for s in scenes], 'class': [s.cls for s in scenes],
            'colour': [s.colour for s in scenes]}


@torch.no_grad()
def vae_gate(vae, scorer: ToyScorer, per_triple: int = 2, seed: int = 0) -> Dict[str, float]:
    """Scorer accuracy on VAE reconstructions (posterior mean, decoded) of renders of every triple."""
    from .base_model import render_many, to_tensor
    scenes = evaluation_scenes(None, per_triple, seed, stream=1)
    images, _ = render_many(scenes)
    recs = []
    for i in range(0, len(images), 128):
        z = vae.encode(to_tensor(images[i:i + 128])).latent_dist.mean
        recs.append(((vae.decode(z).sample.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
    return accuracy(scorer.predict(np.concatenate(recs)), expected_labels(scenes))


def load_pipeline(folder: str, dtype=torch.float32):
    """The stock pipeline with SD's DDIM sampler (what the gates measure)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=dtype, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def sample(pipe, prompts: Sequence[str], seeds: Sequence[int], guidance: float = 5.0, steps: int = 25,
           batch_size: int = 64) -> np.ndarray:
    """uint8 (N, H, W, 3): one image per (prompt, seed), each from its own seeded generator."""
    out = []
    for i in range(0, len(prompts), batch_size):
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds[i:i + batch_size]]
        images = pipe(list(prompts[i:i + batch_size]), generator=gens, guidance_scale=guidance,
                      num_inference_steps=steps, output_type='np').images
        out.append((images * 255).round().astype(np.uint8))
    return np.concatenate(out)


def gate_scenes(held_out: bool, n: int, seed: int = 0) -> List[Scene]:
    """n (triple, seed) draws from the seen or held-out triples, spread evenly over triples."""
    triples = all_triples(held_out=held_out)
    rng = random.Random(seed + (1 if held_out else 0))
    order = (triples * (n // len(triples) + 1))[:n] if n >= len(triples) else rng.sample(triples, n)
    return [Scene(b, k, c, rng.randrange(2 ** 31)) for k, c, b in order]


def base_gates(pipe, scorer: ToyScorer, n_seen: int = 108, n_held: int = 108, guidance: float = 5.0,
               steps: int = 25, seed: int = 0, unconditional: bool = False) -> Dict[str, Dict[str, float]]:
    """Scorer accuracy on samples for seen and held-out triples. ``unconditional``: the empty prompt
    instead (the chance baseline: what the labels get without reading the prompt)."""
    result = {}
    for name, held, n in (('seen', False, n_seen), ('held_out', True, n_held)):
        scenes = gate_scenes(held, n, seed)
        prompts = ['' if unconditional else caption(s.cls, s.colour, s.background) for s in scenes]
        images = sample(pipe, prompts, [s.seed for s in scenes], guidance, steps)
        result[name] = accuracy(scorer.predict(images), expected_labels(scenes))
    return result


def passes(result: Dict[str, Dict[str, float]]) -> Tuple[bool, List[str]]:
    """Whether the base gates hold, with the reason for each one that does not."""
    fails = [f'seen {k} {result["seen"][k]:.3f} < {v}' for k, v in BASE_GATES.items() if result['seen'][k] < v]
    fails += [f'held-out {k} {result["held_out"][k]:.3f} more than {HELD_OUT_MARGIN} below seen'
              for k in BASE_GATES if result['held_out'][k] < result['seen'][k] - HELD_OUT_MARGIN]
    return not fails, fails


def format_result(result: Dict[str, Dict[str, float]]) -> str:
    return '; '.join(f'{split}: ' + ', '.join(f'{k} {v:.3f}' for k, v in accs.items()) for split, accs in result.items())


def log_base_gates(folder: str, step: int, log: Callable, scorer_path: Optional[str] = None, **kw) -> None:
    from .scorer import load_default_scorer
    result = base_gates(load_pipeline(folder), load_default_scorer(scorer_path), **kw)
    log(f'gates at step {step}: {format_result(result)}')


def default_base_path() -> str:
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'data',
                                         'toyworld_sd15'))
