"""Prior-preservation class images (DreamBooth, Sec. 3.3): generated once by the frozen model,
cached on disk, resumed where an interrupted generation stopped."""
import os

from tqdm.auto import tqdm

from mmagic_vico.utils.atomic import atomic_save_image


def class_image_path(folder: str, index: int) -> str:
    return os.path.join(folder, f'class_{index:05d}.png')


def generate_class_images(model, prompt: str, folder: str, num_images: int, batch_size: int = 4,
                          num_inference_steps: int = 50, guidance_scale: float = 7.5, height=None, width=None,
                          seed: int = 0) -> int:
    """Make ``class_00000.png`` ... up to ``num_images`` in ``folder`` with ``model.infer``; existing
    files are kept (so a rerun resumes), each new file is written whole (temporary name + rename).
    Image ``i`` is seeded with ``seed + i``, so a resumed set equals an uninterrupted one. Returns how
    many images were generated now."""
    os.makedirs(folder, exist_ok=True)
    missing = [i for i in range(num_images) if not os.path.exists(class_image_path(folder, i))]
    for start in tqdm(range(0, len(missing), batch_size), desc=f'class images "{prompt}"',
                      disable=not missing):
        for i in missing[start:start + batch_size]:
            image = model.infer(prompt, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                                height=height, width=width, seed=seed + i, show_progress=False)['samples'][0]
            atomic_save_image(class_image_path(folder, i), image)
    return len(missing)
