"""Which DreamBench images each ``infer`` call makes: whole prompts with all their images while they fit
in a batch, one seed per image (prompt ``p``, image ``k``: ``seed + 1000 p + k``), so that an image
is the same whatever the batch, and the calls are the same whatever process makes them."""
from dataclasses import dataclass

from mmagic_vico.utils.errors import InvalidValueError


@dataclass(frozen=True)
class GenerationCall:
    """One ``infer`` call: these prompts (indices) x these images (indices) of each."""
    prompts: tuple
    images: tuple

    def items(self) -> list:
        """``(prompt, image)`` pairs in the call's prompt-major output order."""
        return [(p, k) for p in self.prompts for k in self.images]


def image_seed(seed: int, prompt: int, image: int) -> int:
    return seed + 1000 * prompt + image


def image_name(prompt: int, image: int) -> str:
    return f'{prompt:02d}_{image:02d}.png'


def generation_calls(num_prompts: int, num_images: int, batch_size: int) -> list:
    """The calls covering ``num_prompts`` x ``num_images``, at most ``batch_size`` images each: as many
    whole prompts as fit, or, when one prompt's images do not fit, its images split."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidValueError(f'batch_size={batch_size!r}: give the number of images per infer call, 1 or more '
                                '(--batch-size 8; 1 makes one image per call).')
    if num_images <= batch_size:
        step = batch_size // num_images
        return [GenerationCall(tuple(range(start, min(start + step, num_prompts))), tuple(range(num_images)))
                for start in range(0, num_prompts, step)]
    return [GenerationCall((p,), tuple(range(start, min(start + batch_size, num_images))))
            for p in range(num_prompts) for start in range(0, num_images, batch_size)]
