"""Prior-preservation class images (DreamBooth, Sec. 3.3): generated once by the frozen model,
cached on disk with a manifest of what made them, resumed where an interrupted generation stopped."""
import os

from tqdm.auto import tqdm

from mmagic_vico.utils.atomic import atomic_save_image
from mmagic_vico.utils.manifest import claim, plain, reusable_image

FIX = ('Point class_dir at a folder of its own for this class (--cfg-options class_dir=work_dirs/class_images/NAME: '
       'it sets train_dataloader.dataset.class_dir and default_hooks.class_images.class_dir too), or delete the '
       'folder to make them again.')


def class_image_path(folder: str, index: int) -> str:
    return os.path.join(folder, f'class_{index:05d}.png')


def class_images_record(prompt: str, pretrained_model: str, num_inference_steps: int = 50,
                        guidance_scale: float = 7.5, height=None, width=None, seed: int = 0) -> dict:
    """What makes a class image: its prompt, the frozen model and the sampler (image ``i`` is seeded
    ``seed + i``, so the number of images is not part of it: more can be added)."""
    return plain(dict(what='DreamBooth class images', class_prompt=prompt, pretrained_model=pretrained_model,
                      num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, height=height,
                      width=width, seed=seed))


def check_class_images(folder: str, record: dict, write: bool = True) -> None:
    """The class images already in ``folder`` were made under ``record``, or the run stops here."""
    claim(folder, record, 'class images', FIX, write=write)


def generate_class_images(model, prompt: str, folder: str, num_images: int, batch_size: int = 4,
                          num_inference_steps: int = 50, guidance_scale: float = 7.5, height=None, width=None,
                          seed: int = 0) -> int:
    """Make ``class_00000.png`` ... up to ``num_images`` in ``folder`` with ``model.infer``; existing
    files made with the same prompt, model and sampler are kept (so a rerun resumes; other settings
    stop the run, see :func:`check_class_images`), unreadable ones are made again, each new file is
    written whole (temporary name + rename). Image ``i`` is seeded with ``seed + i``, so a resumed set
    equals an uninterrupted one. Returns how many images were generated now."""
    sampler = dict(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, height=height,
                   width=width, seed=seed)
    check_class_images(folder, class_images_record(prompt, model.pretrained_model, **sampler))
    missing = [i for i in range(num_images) if not reusable_image(class_image_path(folder, i))]
    for start in tqdm(range(0, len(missing), batch_size), desc=f'class images "{prompt}"',
                      disable=not missing):
        for i in missing[start:start + batch_size]:
            image = model.infer(prompt, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                                height=height, width=width, seed=seed + i, show_progress=False)['samples'][0]
            atomic_save_image(class_image_path(folder, i), image)
    return len(missing)
