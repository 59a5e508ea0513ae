"""The demo in a real browser: start tools/demo.py on localhost (in a scratch copy of the repository, as
a user starts it there), drive it with headless Chromium (Debian's package, through playwright-core; no
browser download), upload DreamBench photos, train a few steps, generate, make a mistake, load the weights
back. Its screenshot (work_dirs/test_artifacts/demo.png) is the README's docs/images/demo.png.

Chromium is a system package: `.ci/run` installs it (apt-get install chromium) and sets
MMAGIC_VICO_BROWSER_TESTS=required, so that in CI a missing browser fails the test instead of skipping it.
"""
import glob
import importlib.util
import os
import shutil
import sys
import urllib.parse
import urllib.request

import pytest

from ..conftest import DREAMBENCH, NO_DREAMBENCH, REPO
from ..helpers.demo_server import free_port, serving
from ..helpers.scratch_repo import make_scratch_repo, scratch_env

CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
ARTIFACTS = os.path.join(REPO, 'work_dirs', 'test_artifacts')
# an offline, root-run, screenless Chromium: no sandbox, no GPU, no calls to Google's services
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync',
                 '--disable-dev-shm-usage']


def require_browser():
    missing = []
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        missing.append(f'Chromium at {CHROMIUM} (apt-get install chromium chromium-driver, or set CHROMIUM=path)')
    if importlib.util.find_spec('playwright') is None:
        missing.append('playwright (bash tools/install.sh --tests)')
    if missing:
        message = 'the browser test needs ' + ' and '.join(missing)
        if os.environ.get('MMAGIC_VICO_BROWSER_TESTS') == 'required':
            pytest.fail(message)
        pytest.skip(message)


def default_size() -> int:
    """The side of the demo's default config's images (the toy-world base: 64 px)."""
    from mmengine import Config
    return Config.fromfile(os.path.join(REPO, 'configs', 'vico', 'vico_toy.py')).train_dataloader.dataset.resolution


@pytest.fixture
def demo_url(tmp_path, tiny_path):
    repo = make_scratch_repo(str(tmp_path))
    empty = tmp_path / 'no_examples'  # no example concept: the photos box starts empty, for the upload
    empty.mkdir()
    args = [sys.executable, 'tools/demo.py', '--port', str(free_port()), '--concepts', str(empty),
            '--preview-steps', '2']
    with serving(args, repo, scratch_env(repo), str(tmp_path / 'demo.log')) as url:
        yield url, tmp_path, os.path.join(repo, 'work_dirs', 'demo')


def test_upload_train_generate_and_load_in_chromium(demo_url):
    require_browser()
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright
    url, tmp_path, runs = demo_url
    size = default_size()
    folder = os.path.join(DREAMBENCH, 'dog7')
    if not os.path.isdir(folder):
        pytest.skip(NO_DREAMBENCH)
    photos = sorted(os.path.join(folder, f) for f in os.listdir(folder))[:5]
    os.makedirs(ARTIFACTS, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which(CHROMIUM) or CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': 1400, 'height': 1600})
            page.goto(url)
            page.locator('#concept-photos input[type=file]').set_input_files(photos)
            thumbnails = page.locator('#concept-gallery img')
            expect(thumbnails).to_have_count(len(photos), timeout=30000)
            page.wait_for_function("() => [...document.querySelectorAll('#concept-gallery img')]"
                                   ".every(img => img.complete && img.naturalWidth > 0)", timeout=30000)
            gallery_box = page.locator('#concept-gallery').bounding_box()
            for i in range(len(photos)):  # every photo whole inside the gallery, none cut off
                box = thumbnails.nth(i).bounding_box()
                assert box['height'] > 20 and box['y'] + box['height'] <= gallery_box['y'] + gallery_box['height'] + 1
            page.locator('#initialize-token textarea, #initialize-token input').first.fill('dog')
            page.locator('#steps input').fill('4')
            page.locator('#preview-every input').fill('2')
            page.click('#train-button')
            expect(page.locator('#train-status')).to_contain_text('Training finished after 4 of 4 steps',
                                                                  timeout=180000)
            weights = sorted(glob.glob(os.path.join(runs, 'run_*', 'work', 'vico_weights.safetensors')))
            assert len(weights) == 1
            status = page.locator('#train-status')
            # the weights path as the user would type it (relative to where the demo runs), never a machine path
            expect(status).to_contain_text(os.path.relpath(weights[0], os.path.dirname(os.path.dirname(runs))))
            assert str(tmp_path) not in status.inner_text()
            preview = page.locator('#preview img')
            expect(preview).to_have_count(1)
            grid = Image.open(os.path.join(os.path.dirname(weights[0]), 'vis', 'iter_4.png'))  # captioned tiles
            assert preview.evaluate('img => img.complete && img.naturalWidth') == grid.width > size
            link = page.locator('#weights-out a').first.get_attribute('href')  # the download offered
            assert link.endswith('vico_weights.safetensors')
            assert urllib.request.urlopen(urllib.parse.urljoin(url, link)).read() == open(weights[0], 'rb').read()

            page.locator('#sample-steps input').fill('2')
            page.click('#generate-button')
            images = page.locator('#gallery img')
            expect(images).to_have_count(4, timeout=180000)  # 2 prompts x 2 images
            page.wait_for_function("() => [...document.querySelectorAll('#gallery img')]"
                                   ".every(img => img.complete && img.naturalWidth > 0)", timeout=30000)
            assert images.first.evaluate('img => img.naturalWidth') == size  # the default model's size
            page.screenshot(path=os.path.join(ARTIFACTS, 'demo.png'), full_page=True)

            # a mistake (the placeholder written into the preview prompt instead of {}): a toast that shows
            # the prompt literally; the panels keep the run's status, preview and weights; no new run folder
            page.locator('#preview-prompt textarea, #preview-prompt input').first.fill('a photo of <sks>')
            page.click('#train-button')
            toast = page.locator('.toast-wrap')
            expect(toast).to_contain_text('a photo of <sks>', timeout=30000)
            expect(status).to_contain_text('Training finished after 4 of 4 steps')
            expect(preview).to_have_count(1)
            assert page.locator('#weights-out a').first.get_attribute('href') == link
            assert page.locator('.error, [class*="error"]:visible').count() == 0  # no red badge on a panel
            assert len(glob.glob(os.path.join(runs, 'run_*'))) == 1

            # the weights written by this run, loaded back through the page
            page.get_by_text('Or load trained weights').click()
            page.locator('#weights-in input[type=file]').set_input_files(weights[0])
            page.click('#load-button')
            expect(page.locator('#load-status')).to_contain_text('Loaded ViCo weights for S*', timeout=60000)
        finally:
            browser.close()
    log = (tmp_path / 'demo.log').read_text()
    assert 'Traceback' not in log and 'share=True' not in log
    refused = [line for line in log.splitlines() if 'a photo of <sks>' in line]
    assert len(refused) == 1 and 'Training failed' in refused[0]  # one line for the user's mistake
