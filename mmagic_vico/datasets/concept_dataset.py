"""The concept dataset of ViCo: target image, a different reference image, a templated caption."""
import os
import random
import warnings

from mmcv.transforms import Compose
from mmengine.dist import get_rank
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset

from mmagic_vico.registry import DATASETS
from mmagic_vico.utils import checks
from mmagic_vico.utils.errors import InvalidValueError, MissingFileError
from mmagic_vico.utils.image import IMAGE_EXTENSIONS, to_rgb
from .learnable_property import CAPTION_TEMPLATES, check_learnable_property

#: Concept photos outside these side lengths (px) are used with a warning (blurry / slow).
MIN_SIDE, MAX_SIDE = 64, 8192


def read_templates(path: str, placeholder: str) -> list:
    """Caption templates, one per line (UTF-8), each with ``{}`` (the placeholder) as its only field."""
    if not isinstance(path, str) or not os.path.isfile(path):
        raise MissingFileError(f'caption templates file {path!r} does not exist; give a text file with one '
                               'template per line containing "{}" (e.g. data/vico/imagenet_templates_small.txt).')
    text = checks.read_text(path, 'caption templates file')
    templates = [line.strip() for line in text.splitlines() if line.strip()]
    bad = [t for t in templates if '{}' not in t]
    if not templates or bad:
        raise InvalidValueError(f'{path}: every template needs one "{{}}" for the placeholder {placeholder!r}; '
                                f'found {bad[:3] or "no template"}.')
    for number, line in enumerate(templates, 1):
        checks.template(f'{path}: template {number}', line, placeholder)
    return templates


def default_pipeline(resolution: int, flip_prob: float = 0.0) -> list:
    if not isinstance(resolution, int) or resolution < 8 or resolution % 8:
        raise InvalidValueError(f'resolution={resolution!r} must be a positive multiple of 8 (512 for SD 1.5).')
    pipeline = [dict(type='LoadConceptImage'),
                dict(type='Resize', scale=(resolution, resolution), keep_ratio=False, interpolation='bicubic',
                     backend='pillow')]
    if flip_prob:
        pipeline.append(dict(type='RandomFlip', prob=flip_prob, direction='horizontal'))
    return pipeline + [dict(type='PackConceptImage')]


@DATASETS.register_module()
class ViCoConceptDataset(Dataset):
    """The 4-7 photos of one concept (paper Sec. 4; the original's personalized dataset).

    Item ``i``: image ``i`` as target, a random *other* image as reference (itself if the set has one),
    and a caption from a random template filled with the placeholder: object captions ("a photo of a
    S*") or style captions ("a painting in the style of S*") by ``learnable_property``. Unreadable
    files (truncated, corrupt, too large to open safely) and non-image files are skipped with a warning naming them;
    photos under 64 px or over 8192 px on a side are used with a warning; a missing folder or one
    with no readable image fails here, before training.

    Args:
        data_root: folder holding concept folders.
        concept_dir: the concept's folder under ``data_root``.
        placeholder: the token standing for the concept in captions.
        templates: text file, one caption template with ``{}`` per line; default: the learnable
            property's list (``CAPTION_TEMPLATES``).
        resolution: square training size (bicubic resize, as the original) of the default pipeline.
        flip_prob: probability of a horizontal flip in the default pipeline (0: off, as the original).
        pipeline: mmcv transforms applied to each image dict (``img_path`` -> ``inputs``); default: load
            (EXIF, any mode -> RGB), resize to ``resolution``, optional flip, pack.
        seed: seed of the reference / template choices (offset by the process rank).
        with_reference: False for methods that use the target image only (Textual Inversion, ...).
        caption: a fixed caption (``{}`` is the placeholder) instead of the templates (DreamBooth's
            "a photo of {} dog").
        class_dir: a folder of prior-preservation images; each item then also has ``class_img``
            (read when first needed: they are generated at the start of training).
        learnable_property: ``'object'`` (the images show one thing) or ``'style'`` (they share a look).
    """

    def __init__(self, data_root: str, concept_dir: str, placeholder: str,
                 templates: str | None = None, resolution: int = 512, flip_prob: float = 0.0, pipeline=None,
                 seed: int = 0, with_reference: bool = True, caption: str | None = None,
                 class_dir: str | None = None, learnable_property: str = 'object'):
        if not isinstance(placeholder, str) or not placeholder.strip():
            raise InvalidValueError(f'placeholder={placeholder!r}: give the word that stands for the concept in the '
                                    'captions, e.g. "S*" (--cfg-options placeholder=S*).')
        for name, value in (('data_root', data_root), ('concept_dir', concept_dir)):
            if not isinstance(value, str) or not value:
                raise InvalidValueError(f'{name}={value!r}: give a folder name (--cfg-options data_root=DIR '
                                        'concept_dir=NAME).')
        self.folder = os.path.join(data_root, concept_dir)
        self.placeholder = placeholder
        self.learnable_property = check_learnable_property(learnable_property)
        if caption is not None and '{}' not in caption:
            raise InvalidValueError(f'caption={caption!r} has no "{{}}" for the placeholder {placeholder!r}, so '
                                    'training would never see it; write e.g. "a photo of {} dog".')
        if caption is not None:
            checks.template('caption', caption, placeholder)
        if caption and learnable_property == 'style':
            warnings.warn(f'the fixed caption {caption!r} is used for every image: learnable_property=\'style\' '
                          'chooses the style templates only without one (caption=None, as the *_style configs).')
        templates = templates or CAPTION_TEMPLATES[learnable_property]
        self.templates = [caption] if caption else read_templates(templates, placeholder)
        self.class_dir, self._class_images = class_dir, None
        self.images = self._readable_images(self.folder)
        if pipeline is None:
            pipeline = default_pipeline(resolution, flip_prob)
        self.pipeline = Compose(list(pipeline))
        self.rng = random.Random(seed + get_rank())
        self.with_reference = with_reference

    @staticmethod
    def _readable_images(folder: str) -> list:
        if not os.path.isdir(folder):
            raise MissingFileError(f'concept folder {folder!r} does not exist; put 4-7 photos of the concept '
                                   'there, or point the config at yours: --cfg-options data_root=DIR concept_dir=NAME.')
        names = sorted(os.listdir(folder))
        candidates = [n for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
        others = [n for n in names if n not in candidates and not n.startswith('.')]
        good, bad, tiny, huge = [], [], [], []
        for name in candidates:
            try:
                width, height = to_rgb(os.path.join(folder, name)).size
            except Exception as err:  # PIL raises many types for broken files; to_rgb says which and why
                bad.append(str(err) if isinstance(err, ValueError) else f'{name} ({type(err).__name__}: {err})')
                continue
            good.append(os.path.join(folder, name))
            if min(width, height) < MIN_SIDE:
                tiny.append(f'{name} ({width}x{height})')
            if max(width, height) > MAX_SIDE:
                huge.append(f'{name} ({width}x{height})')
        if not good:
            unreadable = '; '.join(b.rstrip('.') for b in bad[:3])
            raise MissingFileError(
                f'concept folder {folder!r} has no readable image ({", ".join(IMAGE_EXTENSIONS)}); found '
                f'{names[:10] or "nothing"}{"; unreadable: " + unreadable if bad else ""}. '
                'Put 4-7 photos of the concept there.')
        if bad:
            warnings.warn(f'{folder}: skipping {len(bad)} unreadable image(s): {"; ".join(bad)}')
        if others:
            warnings.warn(f'{folder}: ignoring non-image file(s) {others[:10]} (images: {", ".join(IMAGE_EXTENSIONS)}); '
                          'convert photos of other formats (HEIC, AVIF, RAW) to JPEG or PNG.')
        if tiny:
            warnings.warn(f'{folder}: {", ".join(tiny)} smaller than {MIN_SIDE} px on a side: upscaled to the training '
                          'resolution they will look blurry and so will the concept; use photos of at least 512 px.')
        if huge:
            warnings.warn(f'{folder}: {", ".join(huge)} larger than {MAX_SIDE} px on a side: used, but decoded again at '
                          'every step, which slows training; downscale them (e.g. to 1024 px).')
        return good

    @property
    def metainfo(self) -> dict:
        """What the concept is (mmengine hands it to the visualizer as ``dataset_meta``)."""
        return dict(folder=self.folder, placeholder=self.placeholder, images=list(self.images))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        others = [i for i in range(len(self.images)) if i != index] or [index]
        reference = self.rng.choice(others)
        caption = self.rng.choice(self.templates).format(self.placeholder)
        img = self.pipeline(dict(img_path=self.images[index]))
        meta = dict(prompt=caption, img_path=self.images[index], img_flip=bool(img.get('flip', False)))
        inputs = dict(img=img['inputs'])
        if self.with_reference:
            ref = self.pipeline(dict(img_path=self.images[reference]))
            meta.update(ref_path=self.images[reference], ref_flip=bool(ref.get('flip', False)))
            inputs['img_ref'] = ref['inputs']
        if self.class_dir:
            if self._class_images is None:
                self._class_images = self._readable_images(self.class_dir)
            cls = self.pipeline(dict(img_path=self.rng.choice(self._class_images)))
            inputs['class_img'] = cls['inputs']
            meta.update(class_path=cls['img_path'], class_flip=bool(cls.get('flip', False)))
        return dict(inputs=inputs, data_samples=BaseDataElement(metainfo=meta))
