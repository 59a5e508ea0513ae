"""Subject and prompt fidelity: CLIP-T, CLIP-I and DINO as DreamBench reports them.

CLIP-T: cosine of CLIP image and text embeddings (the unique token removed from the prompt).
CLIP-I / DINO: mean pairwise cosine of image embeddings, generated vs real (DINO: the CLS token of
a ViT-S/16 trained with DINO). Backbones load from local folders (transformers layout).
"""
import os

import torch
import torch.nn.functional as F

from mmagic_vico.utils.errors import InvalidValueError, MissingFileError
from mmagic_vico.utils.image import to_rgb


def mean_pairwise_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over all pairs (i, j) of cos(a_i, b_j)."""
    return (F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T).mean().item()


class ImageEmbedder:
    """Image embeddings of a local CLIP (``kind='clip'``: projected image features) or DINO ViT
    (``kind='dino'``: the CLS token of the last layer)."""

    def __init__(self, folder: str, kind: str = 'clip', device: str = 'cpu'):
        from transformers import AutoImageProcessor, AutoModel, CLIPModel
        if kind not in ('clip', 'dino'):
            raise InvalidValueError(f'kind={kind!r}: use "clip" or "dino".')
        if not os.path.isfile(os.path.join(folder, 'config.json')):
            hub = 'openai/clip-vit-base-patch32' if kind == 'clip' else 'facebook/dino-vits16'
            raise MissingFileError(f'{kind.upper()} folder {folder!r} (--{kind}) does not exist or has no config.json; '
                                   'give a local model in the transformers layout, e.g. huggingface-cli download '
                                   f'{hub} --local-dir DIR, or leave --{kind} out for the tiny offline one.')
        self.kind, self.device = kind, device
        if kind == 'clip':
            self.model = CLIPModel.from_pretrained(folder)
        else:  # DINO's score is the CLS token: no pooler (DINO checkpoints have none; asking for one printed a report)
            self.model = AutoModel.from_pretrained(folder, add_pooling_layer=False)
        self.model = self.model.to(device).eval()
        self.processor = AutoImageProcessor.from_pretrained(folder)

    @torch.no_grad()
    def __call__(self, images) -> torch.Tensor:
        pixels = self.processor(images=[to_rgb(i) for i in images], return_tensors='pt')['pixel_values'].to(self.device)
        if self.kind == 'clip':
            out = self.model.get_image_features(pixel_values=pixels)
            return getattr(out, 'pooler_output', out)
        return self.model(pixel_values=pixels).last_hidden_state[:, 0]


class TextImageScorer:
    """CLIP-T: cosine of each image's and its prompt's CLIP embeddings."""

    def __init__(self, folder: str, device: str = 'cpu'):
        from transformers import AutoTokenizer
        self.images = ImageEmbedder(folder, 'clip', device)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)

    @torch.no_grad()
    def __call__(self, images, prompts) -> torch.Tensor:
        """Per-image scores."""
        return self.score(self.images(images), prompts)

    @torch.no_grad()
    def score(self, image_embeddings: torch.Tensor, prompts) -> torch.Tensor:
        """Per-image scores from CLIP image embeddings already computed (CLIP-I needs them too)."""
        tokens = self.tokenizer(list(prompts), padding=True, truncation=True, return_tensors='pt').to(self.images.device)
        out = self.images.model.get_text_features(**tokens)
        text = getattr(out, 'pooler_output', out)
        return (F.normalize(image_embeddings.float(), dim=-1) * F.normalize(text.float(), dim=-1)).sum(-1)
