"""Image transforms of the concept dataset (mmcv's ``BaseTransform`` contract)."""
import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmagic_vico.registry import TRANSFORMS
from mmagic_vico.utils.image import to_rgb


@TRANSFORMS.register_module()
class LoadConceptImage(BaseTransform):
    """Read ``img_path`` as upright 8-bit RGB (EXIF orientation, alpha, CMYK, 16-bit handled)."""

    def transform(self, results: dict) -> dict:
        img = np.asarray(to_rgb(results['img_path']))
        results.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
        return results


@TRANSFORMS.register_module()
class PackConceptImage(BaseTransform):
    """``img`` (H, W, 3) uint8 -> ``inputs``, a (3, H, W) uint8 tensor."""

    def transform(self, results: dict) -> dict:
        results['inputs'] = torch.from_numpy(np.ascontiguousarray(results['img'].transpose(2, 0, 1)))
        return results
