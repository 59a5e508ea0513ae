"""Aesthetic Gradients (Gallego, arXiv 2209.12330): personalise at sampling time by a few gradient
steps of a copy of the CLIP text encoder towards the mean CLIP image embedding of a set of images.
The model's own text encoder, and the unconditional branch, are never touched."""
import copy
import os

import torch

from mmagic_vico.utils.image import list_images, to_rgb
from ..weights import atomic_save_safetensors, read_safetensors

AESTHETIC_KEY = 'aesthetic_embedding'


@torch.no_grad()
def make_aesthetic_embedding(folder: str, clip_model: str, out: str, batch_size: int = 16) -> torch.Tensor:
    """Mean of the L2-normalised CLIP image embeddings of the images in ``folder``, as ``(1, D)``."""
    from transformers import CLIPImageProcessor, CLIPModel
    from tqdm.auto import tqdm
    clip = CLIPModel.from_pretrained(clip_model).eval()
    processor = CLIPImageProcessor.from_pretrained(clip_model)
    paths = list_images(folder)
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
        raise ValueError(f'{embedding} holds no {AESTHETIC_KEY!r}; make one with '
                         'python tools/make_aesthetic_embedding.py FOLDER OUT --clip CLIP_FOLDER.')
    return tensors[AESTHETIC_KEY].reshape(1, -1).float(), meta.get('clip_model')


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
