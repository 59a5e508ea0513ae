"""The Gradio page of the demo: concept photos -> training with live progress and previews -> a gallery
of generated images; or trained weights loaded from a file. The work is :class:`DemoSession`'s."""
import contextlib
import html
import logging
import os
import warnings

import gradio as gr

from mmagic_vico.datasets.learnable_property import EXAMPLE_PROMPTS
from mmagic_vico.utils.errors import UserError
from mmagic_vico.utils.image import list_images
from .session import RECOMMENDED_PHOTOS, DemoSession

#: Errors that are the user's to fix: a toast in the page and one line in the terminal; the panels keep
#: what they showed (a bug's traceback still goes to the terminal).
USER_ERRORS = (UserError, ValueError, FileNotFoundError, RuntimeError, KeyError)
logger = logging.getLogger(__name__)

#: Long paths and names in the status lines wrap instead of overflowing (given to ``launch(css=...)``).
CSS = '#train-status code, #load-status code { overflow-wrap: anywhere; word-break: break-all; }'


def refuse(action: str, err: Exception) -> dict:
    """Show a user error as a toast (literally: ``<sks>`` stays text), log it as one line, and leave the
    outputs as they were (the returned ``gr.skip()``)."""
    logger.warning(f'{action}: {err}')
    gr.Warning(html.escape(str(err)), title=action, duration=None)
    return gr.skip()


def display_path(path: str) -> str:
    """``path`` relative to the working directory when it is inside it (no machine path in the page)."""
    relative = os.path.relpath(os.path.abspath(path))
    return path if relative.startswith('..') else relative


def example_concepts(roots) -> dict:
    """``{name: [image paths]}`` for every sub-folder with images under each of ``roots``."""
    concepts = {}
    for root in roots:
        if not os.path.isdir(root):
            continue
        for name in sorted(os.listdir(root)):
            folder = os.path.join(root, name)
            if not os.path.isdir(folder):
                continue
            try:
                concepts[name if name not in concepts else f'{name} ({root})'] = list_images(folder)
            except FileNotFoundError:  # no image in it: not a concept
                continue
    return concepts


@contextlib.contextmanager
def warnings_to_page():
    """Python warnings raised inside the block (photo count, prompt without placeholder, base model
    mismatch) become yellow toasts in the page."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        yield
    for w in caught:
        if issubclass(w.category, UserWarning):
            gr.Warning(html.escape(str(w.message)))


def _paths(files) -> list:
    return [f if isinstance(f, str) else getattr(f, 'name', str(f)) for f in files or []]


def build_app(session: DemoSession, concept_roots=('data/vico',), preview_steps: int | None = None) -> gr.Blocks:
    concepts = example_concepts(concept_roots)
    default = next(iter(concepts), None)
    lo, hi = RECOMMENDED_PHOTOS
    model_name = session.cfg.model.get('pretrained_model')
    if model_name and os.path.isdir(model_name):
        model_name = display_path(os.path.normpath(model_name))

    def pick(name):
        return concepts.get(name) or None

    def train(files, placeholder, initialize_token, steps, preview_every, preview_prompt, learns,
              progress=gr.Progress()):
        photos = _paths(files)
        placeholder = (placeholder or '').strip()
        reports = session.train(photos, placeholder, (initialize_token or '').strip(), int(steps or 0),
                                int(preview_every or 0), preview_prompt, preview_steps, learnable_property=learns)
        preview, losses = None, []
        progress(0, desc='building the model')
        while True:
            try:
                with warnings_to_page():
                    report = next(reports)
            except StopIteration:
                return
            except USER_ERRORS as err:
                yield (refuse('Training failed', err),) * 3
                return
            if report.loss is not None:
                losses.append(report.loss)
            preview = report.preview or preview
            if report.weights:
                state = 'stopped' if report.stopped else 'finished'
                status = (f'**Training {state}** after {report.step} of {report.total} steps. Weights: '
                          f'`{display_path(report.weights)}`. Now write prompts with `{placeholder}` and press '
                          '*Generate*.')
                yield status, preview, report.weights
                return
            progress((report.step, report.total), desc='training', unit='steps')
            loss = f', loss {sum(losses[-10:]) / len(losses[-10:]):.4f}' if losses else ''
            yield f'Training: step {report.step} / {report.total}{loss}', preview, None

    def stop():
        session.stop()
        return 'Stopping after the current step...'

    def load(weights, files):
        try:
            if not weights:
                raise ValueError('Choose a .safetensors file of trained weights first.')
            with warnings_to_page():
                model = session.load(_paths([weights])[0], _paths(files) or None)
        except USER_ERRORS as err:
            return refuse('Could not load the weights', err)
        return (f'**Loaded** {model.method_name} weights for `{model.placeholder}`; write prompts with it and '
                'press *Generate*.')

    def generate(prompts, num_images, steps, guidance, seed, reference, progress=gr.Progress(track_tqdm=True)):
        try:
            lines = [p.strip() for p in (prompts or '').splitlines() if p.strip()]
            with warnings_to_page():
                images = session.generate(lines, int(num_images), int(steps), float(guidance), int(seed),
                                          reference or None)
        except USER_ERRORS as err:
            return refuse('Could not generate', err)
        return [(image, lines[i // int(num_images)]) for i, image in enumerate(images)]  # captioned by prompt

    with gr.Blocks(title='mmagic_vico demo') as app:
        gr.Markdown(f'# mmagic_vico: personalise Stable Diffusion\n'
                    f'**{session.cfg.model.type}** on `{model_name}` ({session.config}). '
                    f'1. Give {lo}-{hi} photos of a subject; 2. name it with a placeholder and a class word; '
                    '3. train; 4. generate images of it wherever a prompt puts it.')
        with gr.Row():
            with gr.Column():
                gr.Markdown('### 1. Concept photos')
                example = gr.Dropdown(list(concepts), value=default, label='Example concept',
                                      info='or upload your own photos below', elem_id='example-concept')
                photos = gr.File(value=pick(default), file_count='multiple', file_types=['image'],
                                 label=f'Concept photos ({lo}-{hi})', elem_id='concept-photos')
                gallery_in = gr.Gallery(value=pick(default), label='The photos', columns=4, height='auto',
                                        object_fit='contain', elem_id='concept-gallery')
            with gr.Column():
                gr.Markdown('### 2. Train')
                with gr.Row():
                    placeholder = gr.Textbox(session.placeholder, label='Placeholder', elem_id='placeholder',
                                             info='the new word for the subject, used in prompts')
                    init_token = gr.Textbox(session.initialize_token, label='Initialize token',
                                            elem_id='initialize-token', info='one word for its class: dog, toy')
                with gr.Row():
                    steps = gr.Number(session.max_iters, precision=0, minimum=1, label='Steps', elem_id='steps')
                    preview_every = gr.Number(session.preview_interval, precision=0, minimum=1,
                                              label='Preview every', elem_id='preview-every')
                learns = gr.Radio(list(EXAMPLE_PROMPTS), value=session.learnable_property, label='The photos teach',
                                  info='object: the one thing they show; style: the look they share',
                                  elem_id='learnable-property')
                preview_prompt = gr.Textbox(EXAMPLE_PROMPTS[session.learnable_property],
                                            label='Preview prompt ({} = placeholder)', elem_id='preview-prompt')
                with gr.Row():
                    train_button = gr.Button('Train', variant='primary', elem_id='train-button')
                    stop_button = gr.Button('Stop', elem_id='stop-button')
                status = gr.Markdown('Not trained yet.', elem_id='train-status')
                preview = gr.Image(label='Live preview', type='filepath', interactive=False, elem_id='preview')
                weights_out = gr.File(label='Trained weights', interactive=False, elem_id='weights-out')
        with gr.Accordion('Or load trained weights', open=False):
            with gr.Row():
                weights_in = gr.File(file_types=['.safetensors'], label='Weights (.safetensors)', elem_id='weights-in')
                load_button = gr.Button('Load', elem_id='load-button')
            load_status = gr.Markdown(elem_id='load-status')
        gr.Markdown('### 3. Generate')
        with gr.Row():
            with gr.Column():
                prompts = gr.Textbox(f'a photo of {session.placeholder}\na {session.placeholder} on the beach',
                                     lines=3, label='Prompts (one per line)', elem_id='prompts')
                with gr.Row():
                    num_images = gr.Slider(1, 8, value=2, step=1, label='Images per prompt', elem_id='num-images')
                    sample_steps = gr.Number(session.cfg.default_hooks.sample_grid.num_inference_steps, precision=0,
                                             minimum=1, label='Sampling steps', elem_id='sample-steps')
                with gr.Row():
                    guidance = gr.Number(7.5, label='Guidance', elem_id='guidance')
                    seed = gr.Number(0, precision=0, label='Seed', elem_id='seed')
                reference = gr.Image(type='filepath', label='Reference photo (default: the first concept photo)',
                                     visible=session.needs_reference, elem_id='reference')
                generate_button = gr.Button('Generate', variant='primary', elem_id='generate-button')
            gallery = gr.Gallery(label='Generated', columns=2, elem_id='gallery')

        example.change(pick, example, photos)
        photos.change(lambda files: _paths(files) or None, photos, gallery_in)
        learns.change(lambda learned: EXAMPLE_PROMPTS[learned], learns, preview_prompt)
        train_button.click(train, [photos, placeholder, init_token, steps, preview_every, preview_prompt, learns],
                           [status, preview, weights_out])
        stop_button.click(stop, None, status)
        load_button.click(load, [weights_in, photos], load_status)
        generate_button.click(generate, [prompts, num_images, sample_steps, guidance, seed, reference], gallery)
    return app


#: System fonts only: the default theme fetches Google Fonts, which an offline machine cannot reach.
THEME = gr.themes.Default(font=['ui-sans-serif', 'system-ui', 'sans-serif'],
                          font_mono=['ui-monospace', 'monospace'])
