"""The concept dataset of ViCo: target image, a different reference image, a templated caption."""
import os
import random
import warnings

from mmcv.transforms import Compose
from mmengine.dist import get_rank
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

from mmagic_vico.registry import DATASETS
from mmagic_vico.utils.image import IMAGE_EXTENSIONS, to_rgb


def read_templates(path: str, placeholder: str) -> list:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'caption templates file {path!r} does not exist; give a text file with one '
                                'template per line containing "{}" (e.g. data/vico/imagenet_templates_small.txt).')
    with open(path, encoding='utf-8') as f:
        templates = [line.strip() for line in f if line.strip()]
    bad = [t for t in templates if '{}' not in t]
    if not templates or bad:
        raise ValueError(f'{path}: every template needs one "{{}}" for the placeholder {placeholder!r}; '
                         f'found {bad[:3] or "no template"}.')
    return templates


@DATASETS.register_module()
class ViCoConceptDataset(Dataset):
    """The 4-7 photos of one concept (paper Sec. 4; the original's personalized dataset).

    Item ``i``: image ``i`` as target, a random *other* image as reference (itself if the set has one),
    and a caption from a random template filled with the placeholder. Unreadable files are skipped
    with a warning; a missing folder or one with no readable image fails here, before training.

    Args:
        data_root: folder holding concept folders.
        concept_dir: the concept's folder under ``data_root``.
        placeholder: the token standing for the concept in captions.
        templates: text file, one caption template with ``{}`` per line.
        pipeline: mmcv transforms applied to each image dict (``img_path`` -> ``inputs``).
        seed: seed of the reference / template choices (offset by the process rank).
    """

    def __init__(self, data_root: str, concept_dir: str, placeholder: str,
                 templates: str = 'data/vico/imagenet_templates_small.txt', pipeline=(), seed: int = 0):
        self.folder = os.path.join(data_root, concept_dir)
        self.placeholder = placeholder
        self.templates = read_templates(templates, placeholder)
        self.images = self._readable_images(self.folder)
        self.pipeline = Compose(list(pipeline))
        self.rng = random.Random(seed + get_rank())

    @staticmethod
    def _readable_images(folder: str) -> list:
        if not os.path.isdir(folder):
            raise FileNotFoundError(f'concept folder {folder!r} does not exist; put 4-7 photos of the concept '
                                    'there, or point the config at yours: --cfg-options data_root=DIR concept_dir=NAME.')
        names = sorted(os.listdir(folder))
        candidates = [n for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
        others = [n for n in names if n not in candidates and not n.startswith('.')]
        good, bad = [], []
        for name in candidates:
            try:
                to_rgb(os.path.join(folder, name))
                good.append(os.path.join(folder, name))
            except Exception as err:  # PIL raises many types for broken files
                bad.append(f'{name} ({type(err).__name__}: {err})')
        if not good:
            raise FileNotFoundError(
                f'concept folder {folder!r} has no readable image ({", ".join(IMAGE_EXTENSIONS)}); found '
                f'{names[:10] or "nothing"}{" and unreadable " + "; ".join(bad[:3]) if bad else ""}. '
                'Put 4-7 photos of the concept there.')
        if bad:
            warnings.warn(f'{folder}: skipping unreadable image(s) {"; ".join(bad)}')
        if others:
            warnings.warn(f'{folder}: ignoring non-image file(s) {others[:10]}')
        return good

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        others = [i for i in range(len(self.images)) if i != index] or [index]
        reference = self.rng.choice(others)
        caption = self.rng.choice(self.templates).format(self.placeholder)
        img = self.pipeline(dict(img_path=self.images[index]))
        ref = self.pipeline(dict(img_path=self.images[reference]))
        meta = dict(prompt=caption, img_path=self.images[index], ref_path=self.images[reference],
                    img_flip=bool(img.get('flip', False)), ref_flip=bool(ref.get('flip', False)))
        return dict(inputs=dict(img=img['inputs'], img_ref=ref['inputs']), data_samples=BaseDataElement(metainfo=meta))
