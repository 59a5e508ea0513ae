"""Tell a toy-world picture's labels from its pixels: a small CNN trained on rendered ground truth.

One network, one head per label (background, class, colour; the concept benchmark adds its own
heads). It is trained on renders made blurry, noisy, shifted and relit at random, so that it judges
decoded samples of a diffusion model (softer than renders) by what they show, and is gated on
held-out renders. Weights are one safetensors file whose metadata names the heads and their labels.
"""
import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from mmagic_vico.utils.errors import InvalidValueError, MissingFileError
from .world import BACKGROUND_NAMES, CLASS_NAMES, COLOUR_NAMES

#: The base world's heads, in the column order of ``base_model.scene_labels``.
BASE_HEADS: Dict[str, List[str]] = {'background': BACKGROUND_NAMES, 'class': CLASS_NAMES, 'colour': COLOUR_NAMES}


def _block(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ToyScorer(nn.Module):
    """A 6-layer CNN on 64 px RGB (32, 16, 8 px feature maps), average- and max-pooled, with a linear head per label."""

    def __init__(self, heads: Dict[str, List[str]], width: int = 32):
        super().__init__()
        self.heads = {k: list(v) for k, v in heads.items()}
        w = width
        self.features = nn.Sequential(_block(3, w, 2), _block(w, w, 1), _block(w, 2 * w, 2), _block(2 * w, 2 * w, 1),
                                      _block(2 * w, 4 * w, 2), _block(4 * w, 4 * w, 1))
        self.out = nn.ModuleDict({k: nn.Linear(8 * w, len(v)) for k, v in self.heads.items()})

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features of images in [-1, 1], (N, 3, 64, 64) -> (N, 8 * width)."""
        f = self.features(x)
        return torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        e = self.embed(x)
        return {k: head(e) for k, head in self.out.items()}

    # ------------------------------------------------------------------ files
    def save(self, path: str) -> None:
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        width = self.features[0][0].out_channels
        tmp = path + '.tmp'
        save_file(tensors, tmp, metadata={'format': 'mmagic_vico.toy_scorer', 'heads': json.dumps(self.heads),
                                          'width': str(width)})
        os.replace(tmp, path)

    @classmethod
    def from_file(cls, path: str) -> 'ToyScorer':
        from safetensors import SafetensorError, safe_open
        try:
            with safe_open(path, 'pt') as f:
                meta = f.metadata() or {}
        except (SafetensorError, OSError) as err:
            raise InvalidValueError(f'{path} is not a readable safetensors file ({err}); give a scorer written by '
                                    'tools/train_toy_scorer.py') from err
        if meta.get('format') != 'mmagic_vico.toy_scorer':
            raise InvalidValueError(f'{path} is not a toy-world scorer (no mmagic_vico.toy_scorer metadata); train '
                                    'one with tools/train_toy_scorer.py')
        model = cls(json.loads(meta['heads']), int(meta['width']))
        model.load_state_dict(load_file(path))
        return model.eval()

    # ------------------------------------------------------------------ use
    @torch.no_grad()
    def read(self, images, batch_size: int = 256):
        """One pass over uint8 arrays (N, H, W, 3) or PIL images (resized to 64 px): label names per head, and
        the L2-normalised pooled features (the feature-cosine, DINO-like similarity uses these)."""
        x = images_to_tensor(images)
        embedded = torch.cat([self.embed(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        labels = {k: [self.heads[k][j] for j in head(embedded).argmax(1).tolist()] for k, head in self.out.items()}
        return labels, F.normalize(embedded, dim=1)

    def predict(self, images, batch_size: int = 256) -> Dict[str, List[str]]:
        """Label names per head (see :meth:`read`)."""
        return self.read(images, batch_size)[0]

    def features_of(self, images, batch_size: int = 256) -> torch.Tensor:
        """L2-normalised pooled features (see :meth:`read`)."""
        return self.read(images, batch_size)[1]


def images_to_tensor(images, size: int = 64) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        arr = images
    elif all(isinstance(im, np.ndarray) for im in images):
        arr = np.stack(images)
    else:
        from PIL import Image
        arr = np.stack([np.asarray(im.convert('RGB').resize((size, size), Image.BICUBIC)) for im in images])
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random blur (sigma 0..1.5 px), shift (up to 4 px), relight (x0.85..1.15, +-0.1) and noise (sigma 0..0.08)."""
    n = x.shape[0]
    sigma = float(torch.rand((), generator=g)) * 1.5
    if sigma > 0.2:
        r = torch.arange(-3, 4, dtype=torch.float32)
        k = torch.exp(-r ** 2 / (2 * sigma ** 2))
        k = (k / k.sum()).view(1, 1, 1, 7).repeat(3, 1, 1, 1)
        x = F.conv2d(F.pad(x, (3, 3, 0, 0), mode='replicate'), k, groups=3)
        x = F.conv2d(F.pad(x, (0, 0, 3, 3), mode='replicate'), k.transpose(2, 3), groups=3)
    dy, dx = torch.randint(-4, 5, (2,), generator=g).tolist()
    x = torch.roll(x, (dy, dx), dims=(2, 3))
    gain = 0.85 + 0.3 * torch.rand(n, 1, 1, 1, generator=g)
    bias = 0.2 * torch.rand(n, 1, 1, 1, generator=g) - 0.1
    x = (x + 1) * gain - 1 + bias
    x = x + torch.randn(x.shape, generator=g) * 0.08 * torch.rand(n, 1, 1, 1, generator=g)
    return x.clamp(-1, 1)


def train_scorer(images: np.ndarray, labels: np.ndarray, heads: Dict[str, List[str]], steps: int = 2000,
                 batch_size: int = 64, lr: float = 3e-3, seed: int = 0, log: Callable = print) -> ToyScorer:
    """labels: (N, len(heads)) int in the order of ``heads``."""
    torch.manual_seed(seed)
    model = ToyScorer(heads)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    y_all = torch.from_numpy(labels.astype(np.int64))
    model.train()
    t0, running = time.time(), None
    for step in range(steps):
        idx = torch.randint(len(images), (batch_size,), generator=g)
        x = augment(images_to_tensor(images[idx.numpy()]), g)
        out = model(x)
        loss = sum(F.cross_entropy(out[k], y_all[idx, j]) for j, k in enumerate(heads))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if (step + 1) % 200 == 0:
            log(f'scorer step {step + 1}/{steps} loss {running:.4f} ({time.time() - t0:.0f} s)')
    return model.eval()


def accuracy(predicted: Dict[str, Sequence[str]], expected: Dict[str, Sequence[str]]) -> Dict[str, float]:
    """Fraction of agreement per head present in both."""
    return {k: float(np.mean([p == e for p, e in zip(predicted[k], expected[k])])) for k in expected if k in predicted}


def default_scorer_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'data', 'toyworld_scorer.safetensors')


def load_default_scorer(path: Optional[str] = None) -> ToyScorer:
    path = os.path.normpath(path or default_scorer_path())
    if not os.path.exists(path):
        raise MissingFileError(f'No toy-world scorer at {path}: train it with python tools/train_toy_scorer.py')
    return ToyScorer.from_file(path)
