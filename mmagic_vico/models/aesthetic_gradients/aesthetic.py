"""Aesthetic Gradients (Gallego, arXiv 2209.12330): personalise at sampling time by a few gradient
steps of a copy of the CLIP text encoder towards the mean CLIP image embedding of a set of images.
The model's own text encoder, and the unconditional branch, are never touched."""
import copy
import json
import os

import torch

from mmagic_vico.utils import checks
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError
from mmagic_vico.utils.image import list_images, to_rgb
from ..weights import atomic_save_safetensors, read_safetensors

AESTHETIC_KEY = 'aesthetic_embedding'


@torch.no_grad()
def make_aesthetic_embedding(folder: str, clip_model: str, out: str, batch_size: int = 16) -> torch.Tensor:
    """Mean of the L2-normalised CLIP image embeddings of the images in ``folder``, as ``(1, D)``."""
    from transformers import CLIPImageProcessor, CLIPModel
    from tqdm.auto import tqdm
    checks.positive_int('batch_size', batch_size, 'images per CLIP batch, e.g. 16')
    paths = list_images(folder)  # a missing or empty folder fails before CLIP loads
    clip_config(clip_model, '--clip')
    clip = CLIPModel.from_pretrained(clip_model).eval()
    processor = CLIPImageProcessor.from_pretrained(clip_model)
    embeddings = []
    for start in tqdm(range(0, len(paths), batch_size), desc='CLIP image embeddings'):
        images = [to_rgb(p) for p in paths[start:start + batch_size]]
        pixels = processor(images=images, return_tensors='pt')['pixel_values']
        features = clip.get_image_features(pixel_values=pixels)
        features = getattr(features, 'pooler_output', features)
        embeddings.append(features / features.norm(dim=-1, keepdim=True))
    mean = torch.cat(embeddings).mean(dim=0, keepdim=True)
    atomic_save_safetensors(out, {AESTHETIC_KEY: mean}, {'clip_model': os.path.abspath(clip_model),
                                                         'num_images': str(len(paths)), 'folder': folder})
    return mean


def load_aesthetic_embedding(embedding) -> tuple:
    """``(1, D)`` embedding and the CLIP folder it was made with, from a path or a tensor."""
    if isinstance(embedding, torch.Tensor):
        return embedding.reshape(1, -1).float(), None
    tensors, meta = read_safetensors(embedding, 'aesthetic embedding')
    if AESTHETIC_KEY not in tensors:
        raise InvalidValueError(f'{embedding} holds no {AESTHETIC_KEY!r}; make one with '
                                'python tools/make_aesthetic_embedding.py FOLDER OUT --clip CLIP_FOLDER.')
    return tensors[AESTHETIC_KEY].reshape(1, -1).float(), meta.get('clip_model')


def clip_config(folder: str, source: str) -> dict:
    """The ``config.json`` of a local CLIP folder (``source`` says where the folder was named)."""
    path = os.path.join(folder, 'config.json')
    if not os.path.isfile(path):
        raise MissingFileError(f'CLIP folder {folder!r} ({source}) does not exist or has no config.json; give a local '
                               'CLIP in the transformers layout with --aesthetic-clip DIR (for embeddings: --clip '
                               'DIR): the CLIP whose text tower is the model\'s text encoder '
                               '(openai/clip-vit-large-patch14 for SD 1.5; data/tiny_clip for the tiny default).')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def check_aesthetic_embedding(embedding, clip: str | None = None, text_width: int | None = None) -> tuple:
    """``(embedding (1, D), CLIP folder)`` for steering, checked before any step: the CLIP folder (given,
    or recorded in the file) exists, projects to the embedding's width, and its text tower has the text
    encoder's width ``text_width``."""
    target, made_with = load_aesthetic_embedding(embedding)
    folder = clip or made_with
    if folder is None:
        raise InvalidValueError('aesthetic_clip is required with a tensor aesthetic_embedding: the CLIP folder whose '
                                'text projection maps the text encoder into the image embedding space.')
    source = '--aesthetic-clip' if clip else f'recorded in {embedding}; pass --aesthetic-clip DIR if it moved'
    config = clip_config(folder, source)
    width = config.get('projection_dim')
    if width and target.shape[-1] != width:
        raise InvalidValueError(f'aesthetic embedding {embedding if isinstance(embedding, str) else "tensor"} is '
                                f'{target.shape[-1]} wide but the CLIP {folder!r} projects to {width}: it was made '
                                'with another CLIP. Pass the CLIP it was made with (--aesthetic-clip DIR), or make it '
                                'again with this one (python tools/make_aesthetic_embedding.py FOLDER OUT --clip '
                                f'{folder}).')
    text = (config.get('text_config') or {}).get('hidden_size')
    if text_width and text and text != text_width:
        raise InvalidValueError(f'the CLIP {folder!r} has a text tower {text} wide but the model\'s text encoder is '
                                f'{text_width} wide: Aesthetic Gradients tunes the text encoder through that CLIP\'s '
                                'text projection, so it needs the CLIP of the model (openai/clip-vit-large-patch14 for '
                                'SD 1.5; data/tiny_clip for the tiny default): pass it with --aesthetic-clip DIR.')
    return target, folder


def aesthetic_text_context(text_encoder, text_projection, input_ids, eot_index, embedding, steps: int,
                           lr: float) -> torch.Tensor:
    """Per prompt: tune a copy of the text encoder for ``steps`` Adam steps (lr ``lr``) to raise the
    cosine of its projected end-of-text feature with ``embedding``; return the tuned copy's context."""
    contexts = []
    target = embedding / embedding.norm(dim=-1, keepdim=True)
    for row in range(input_ids.shape[0]):
        ids, eot = input_ids[row:row + 1], eot_index[row:row + 1]
        tuned = copy.deepcopy(text_encoder).float().train()
        tuned.requires_grad_(True)
        optimizer = torch.optim.Adam(tuned.parameters(), lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                hidden = tuned(ids, attention_mask=None)[0]
                feature = text_projection(hidden[torch.arange(1), eot].float())
                feature = feature / feature.norm(dim=-1, keepdim=True)
                loss = -(feature @ target.to(feature).T).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            contexts.append(tuned.eval()(ids, attention_mask=None)[0])
        del tuned, optimizer
    return torch.cat(contexts)
