"""Side-by-side speed and memory of ViCo: not a test; every figure is a median measured in this run.

1. Sampling: ViCo ``infer`` vs diffusers' ``StableDiffusionPipeline`` on the same components, steps,
   guidance and size, at N = 1 and N = 4 images per prompt.
2. ViCo's fast path vs its straightforward path (``fast_path=False``: no sharing, no truncation, no
   latent cache, eager attention everywhere), for sampling and for a training step, with the peak
   memory of a training step.
3. ``--dreambench DIR``: instead, DreamBench generation of one subject (25 prompts x 4 images, PNGs
   written) by the evaluator, batched (``--batch-size`` images per infer call) vs one image per call.

    python tools/benchmark.py --model tiny                     # seconds
    python tools/benchmark.py --model sd15 --size 256          # SD 1.5's architecture, random weights
    python tools/benchmark.py --model tiny --dreambench ../shared/data/dreambench --repeats 1
"""
import argparse
import ctypes
import gc
import os
import platform
import statistics
import sys
import tempfile
import time

import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline

from mmagic_vico.evaluation.evaluator import DreamBenchEvaluator, default_backbones
from mmagic_vico.models.tiny_sd import build_tiny_sd
from mmagic_vico.models.vico.vico import ViCo
from mmagic_vico.utils import register_all_modules
from mmagic_vico.utils.cli import add_debug_flag, guidance_scale, image_size, positive_int
from mmagic_vico.utils.errors import run_tool
from mmagic_vico.utils.image import list_images, to_rgb

CONCEPT = os.path.join('data', 'vico', 'tiny_toy')


def median_time(fn, repeats: int, label: str = '') -> float:
    fn()  # warm-up (and the training latent cache)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    print(f'  {label}: ' + ', '.join(f'{t:.2f}' for t in times) + ' s', flush=True)
    return statistics.median(times)


def rss_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def peak_memory_mib(fn) -> float:
    """Peak resident memory above the level before ``fn`` (Linux: VmHWM reset through clear_refs)."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except OSError:
        pass
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    before = rss_kib('VmRSS:')
    fn()
    return (rss_kib('VmHWM:') - before) / 1024


def model_folder(kind: str) -> str:
    if kind == 'tiny':
        return os.path.join('data', 'tiny_sd15')
    folder = os.path.join('work_dirs', 'benchmark', 'sd15_random')
    if not os.path.isdir(folder):
        print(f'building SD 1.5 architecture with random weights in {folder} (once, 4.3 GB) ...', flush=True)
        build_tiny_sd(folder, full_size=True)
    return folder


def training_step(model, optimizer, batch):
    losses = model.loss(*batch)
    optimizer.zero_grad(set_to_none=True)
    (losses['loss_diffusion'] + losses['loss_reg']).backward()
    optimizer.step()


def training_batch(model, size: int):
    images = list_images(CONCEPT)[:2]
    pixels = torch.cat([model.image_processor.preprocess(to_rgb(p), height=size, width=size) for p in images])
    samples = [dict(prompt='a photo of a S*', img_path=images[0], ref_path=images[1])]
    return dict(img=pixels[:1], img_ref=pixels[1:2]), samples


def run(kind: str, size: int, steps: int, repeats: int, guidance: float) -> list:
    folder = model_folder(kind)
    model = ViCo(folder, placeholder='S*', initialize_token='toy').eval()
    scheduler = DDIMScheduler.from_config(model.scheduler_config)
    pipe = StableDiffusionPipeline(vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer,
                                   unet=model.unet, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    reference = list_images(CONCEPT)[0]
    common = dict(height=size, width=size, num_inference_steps=steps, guidance_scale=guidance)
    rows = []
    for n in (1, 4):
        sd = median_time(lambda: pipe('a photo of a toy', num_images_per_prompt=n,
                                      generator=torch.Generator().manual_seed(0), **common), repeats,
                         f'StableDiffusionPipeline N={n}')
        timings = {}
        for fast in (True, False):
            model.use_fast_path(fast)
            timings[fast] = median_time(lambda: model.infer('a photo of S*', reference, num_images_per_prompt=n,
                                                            seed=0, show_progress=False, **common), repeats,
                                        f'ViCo {"fast" if fast else "straightforward"} N={n}')
        model.use_fast_path(True)
        rows.append((f'sampling N={n}: ViCo / StableDiffusionPipeline', f'{timings[True]:.2f} s / {sd:.2f} s',
                     f'{timings[True] / sd:.2f}x'))
        rows.append((f'sampling N={n}: straightforward ViCo / StableDiffusionPipeline',
                     f'{timings[False]:.2f} s / {sd:.2f} s', f'{timings[False] / sd:.2f}x'))
        rows.append((f'sampling N={n}: speed-up of the fast path', '', f'{timings[False] / timings[True]:.2f}x'))

    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    batch = training_batch(model, size)
    step, memory = {}, {}
    for fast in (True, False):
        model.use_fast_path(fast)
        model.latent_cache.clear()
        step[fast] = median_time(lambda: training_step(model, optimizer, batch), repeats,
                                 f'training step {"fast" if fast else "straightforward"}')
        memory[fast] = peak_memory_mib(lambda: training_step(model, optimizer, batch))
    model.use_fast_path(True)
    rows.append(('training step (batch 1): fast / straightforward', f'{step[True]:.2f} s / {step[False]:.2f} s',
                 f'{step[False] / step[True]:.2f}x faster'))
    rows.append(('training step peak memory above the loaded model: fast / straightforward',
                 f'{memory[True]:.0f} MiB / {memory[False]:.0f} MiB', f'{memory[True] / memory[False]:.2f}x'))
    return rows


def dreambench_generation(kind: str, size: int, steps: int, repeats: int, guidance: float, dreambench: str,
                          subject: str, num_images: int, batch_size: int) -> list:
    """Evaluator generation of a subject, batched vs one image per call, the runs interleaved."""
    model = ViCo(model_folder(kind), placeholder='S*', initialize_token='toy').eval()
    evaluator = DreamBenchEvaluator(dreambench, *default_backbones())
    sampling = dict(num_images=num_images, num_inference_steps=steps, guidance_scale=guidance, height=size,
                    width=size)
    model.infer('a photo of S*', list_images(os.path.join(dreambench, subject))[0], num_inference_steps=1,
                height=size, width=size, show_progress=False)  # warm-up
    times = {batch_size: [], 1: []}
    for _ in range(repeats):
        for batch in times:
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                paths = evaluator.generate(model, subject, folder, batch_size=batch, **sampling)
                times[batch].append(time.perf_counter() - start)
            print(f'  {len(paths)} images, {batch} per call: {times[batch][-1]:.1f} s', flush=True)
    batched, alone = (statistics.median(times[b]) for b in (batch_size, 1))
    prompts = len(evaluator.protocol.prompts(subject, 'S*'))
    return [(f'DreamBench {subject}, {prompts} prompts x {num_images} images: {batch_size} per call / 1 per call',
             f'{batched:.1f} s / {alone:.1f} s', f'{alone / batched:.2f}x faster')]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', choices=['tiny', 'sd15'], default='tiny')
    parser.add_argument('--size', type=image_size, default=None, help='image size (default: 128 tiny, 256 sd15)')
    parser.add_argument('--steps', type=positive_int, default=None,
                        help='DDIM steps per sample (default: 10 tiny, 3 sd15)')
    parser.add_argument('--repeats', type=positive_int, default=3)
    parser.add_argument('--guidance', type=guidance_scale, default=7.5)
    parser.add_argument('--dreambench', help='measure DreamBench generation of --subject instead (the folder)')
    parser.add_argument('--subject', default='dog7')
    parser.add_argument('--num-images', type=positive_int, default=4, help='DreamBench images per prompt')
    parser.add_argument('--batch-size', type=positive_int, default=8, help='DreamBench images per infer call, batched')
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    register_all_modules()
    size = args.size or (128 if args.model == 'tiny' else 256)
    steps = args.steps or (10 if args.model == 'tiny' else 3)
    if args.dreambench:
        rows = dreambench_generation(args.model, size, steps, args.repeats, args.guidance, args.dreambench,
                                     args.subject, args.num_images, args.batch_size)
    else:
        rows = run(args.model, size, steps, args.repeats, args.guidance)
    print(f'\n{args.model} model, {size}x{size}, {steps} DDIM steps, guidance {args.guidance}, median of '
          f'{args.repeats} runs after a warm-up; torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{platform.processor() or platform.machine()}, device cpu')
    print(f'command: python {" ".join(sys.argv)}\n')
    print('| measurement | times | ratio |\n|---|---|---|')
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')


if __name__ == '__main__':
    run_tool(main)
