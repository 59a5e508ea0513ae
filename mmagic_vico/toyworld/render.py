"""A deterministic renderer of captionable toy scenes: one object on one background.

Small pure functions in one shared shape (k-diffusion style): every background is
``bg_<name>(rng, grid) -> (H, W, 3)`` and every object is ``obj_<name>(rng, u, v) -> [(inside, shade), ...]``
in object-local coordinates. ``render_scene`` supersamples 2x and box-filters down, so edges are
antialiased, and returns the object's mask beside the picture. Everything draws from one
``numpy.random.Generator``: a seed gives the same scene on every machine.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

import numpy as np

#: Base colours (sRGB, 0..1). Chosen far apart in hue so that a colour word is a property of the pixels.
COLOURS: Dict[str, Tuple[float, float, float]] = {
    'red': (0.86, 0.12, 0.12),
    'green': (0.15, 0.70, 0.22),
    'blue': (0.14, 0.30, 0.90),
    'yellow': (0.96, 0.84, 0.12),
    'purple': (0.58, 0.22, 0.78),
    'orange': (0.98, 0.52, 0.08),
}


@dataclass
class Grid:
    """Pixel-centre coordinates in [0, 1] of a square canvas (x to the right, y down)."""
    size: int
    x: np.ndarray = field(init=False)
    y: np.ndarray = field(init=False)

    def __post_init__(self):
        c = (np.arange(self.size, dtype=np.float32) + 0.5) / self.size
        self.y, self.x = np.meshgrid(c, c, indexing='ij')


# ----------------------------------------------------------------------------- noise helpers
def value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a random cells x cells lattice, bilinearly interpolated to size x size."""
    lattice = rng.random((cells + 1, cells + 1), dtype=np.float32)
    t = np.linspace(0, cells, size, endpoint=False, dtype=np.float32) + 0.5 * cells / size
    i = np.minimum(t.astype(int), cells - 1)
    f = t - i
    f = f * f * (3 - 2 * f)  # smoothstep: no lattice creases
    rows = lattice[i] * (1 - f)[:, None] + lattice[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def fractal_noise(rng: np.random.Generator, size: int, cells: int = 4, octaves: int = 3) -> np.ndarray:
    out, amp, total = np.zeros((size, size), np.float32), 1.0, 0.0
    for o in range(octaves):
        out += amp * value_noise(rng, size, cells * 2 ** o)
        total += amp
        amp *= 0.5
    return out / total


def _mix(a, b, t):
    """Blend colours a, b with weights t (H, W) -> (H, W, 3)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a + (b - a) * t[..., None]


def _dots(rng, g: Grid, count: int, radius: Tuple[float, float], region=(0.0, 1.0)) -> np.ndarray:
    """Union of `count` random discs (radius in canvas units) with centres at y in `region`; (H, W) bool."""
    out = np.zeros(g.x.shape, bool)
    for _ in range(count):
        cx, cy = rng.random(), region[0] + (region[1] - region[0]) * rng.random()
        r = rng.uniform(*radius)
        out |= (g.x - cx) ** 2 + (g.y - cy) ** 2 < r * r
    return out


# ----------------------------------------------------------------------------- backgrounds
def bg_beach(rng, g: Grid):
    """Sky over a thin sea band over sand with speckles."""
    horizon = rng.uniform(0.36, 0.46)
    sea = horizon + rng.uniform(0.08, 0.12)
    img = _mix((0.45, 0.70, 0.95), (0.75, 0.88, 0.99), np.clip(g.y / horizon, 0, 1))
    waves = 0.5 + 0.5 * np.sin(g.x * 40 + rng.uniform(0, 6) + 6 * value_noise(rng, g.size, 3))
    img = np.where(((g.y >= horizon) & (g.y < sea))[..., None], _mix((0.05, 0.35, 0.65), (0.2, 0.55, 0.8), waves), img)
    sand = _mix((0.86, 0.74, 0.50), (0.96, 0.88, 0.66), fractal_noise(rng, g.size, 6))
    speck = rng.random(g.x.shape) < 0.04
    sand = np.where(speck[..., None], sand * 0.8, sand)
    return np.where((g.y >= sea)[..., None], sand, img)


def bg_snow(rng, g: Grid):
    """Pale grey-blue sky with falling flakes over white ground with soft drifts."""
    ground = rng.uniform(0.45, 0.6) + 0.05 * np.sin(g.x * 9 + rng.uniform(0, 6))
    img = _mix((0.72, 0.78, 0.86), (0.85, 0.88, 0.93), g.y)
    snow = _mix((0.88, 0.91, 0.96), (1.0, 1.0, 1.0), fractal_noise(rng, g.size, 5))
    img = np.where((g.y >= ground)[..., None], snow, img)
    flakes = _dots(rng, g, 40, (0.006, 0.014))
    return np.where(flakes[..., None], np.float32(1.0), img)


def bg_grass(rng, g: Grid):
    """A green lawn of vertical blades, a strip of sky at the top."""
    top = rng.uniform(0.12, 0.25)
    blades = fractal_noise(rng, g.size, 3) * 0.5 + 0.5 * (0.5 + 0.5 * np.sin(g.x * rng.uniform(90, 130)
                                                                             + 3 * value_noise(rng, g.size, 4)))
    img = _mix((0.12, 0.40, 0.10), (0.35, 0.70, 0.20), blades)
    return np.where((g.y < top)[..., None], _mix((0.55, 0.78, 0.95), (0.7, 0.85, 0.97), g.y / top), img)


def bg_night(rng, g: Grid):
    """A dark navy sky with stars and a moon over a black horizon."""
    img = _mix((0.02, 0.03, 0.12), (0.08, 0.10, 0.25), g.y)
    stars = rng.random(g.x.shape) < 0.012
    img = np.where(stars[..., None], np.float32(0.95), img)
    mx, my = rng.uniform(0.1, 0.9), rng.uniform(0.08, 0.25)
    moon = (g.x - mx) ** 2 + (g.y - my) ** 2 < 0.07 ** 2
    img = np.where(moon[..., None], np.asarray((0.95, 0.93, 0.78), np.float32), img)
    hill = g.y > 0.78 + 0.04 * np.sin(g.x * 7 + rng.uniform(0, 6))
    return np.where(hill[..., None], np.float32(0.02), img)


def bg_room(rng, g: Grid):
    """A beige wall with a window over a dark wooden floor."""
    floor = rng.uniform(0.62, 0.72)
    img = _mix((0.85, 0.78, 0.62), (0.78, 0.70, 0.55), fractal_noise(rng, g.size, 3))
    wx, wy, ww, wh = rng.uniform(0.05, 0.6), rng.uniform(0.08, 0.2), rng.uniform(0.22, 0.32), 0.28
    window = (g.x > wx) & (g.x < wx + ww) & (g.y > wy) & (g.y < wy + wh)
    frame = window & ((np.abs(g.x - wx - ww / 2) < 0.012) | (np.abs(g.y - wy - wh / 2) < 0.012))
    img = np.where(window[..., None], np.asarray((0.62, 0.82, 0.97), np.float32), img)
    img = np.where(frame[..., None], np.asarray((0.95, 0.95, 0.95), np.float32), img)
    boards = 0.5 + 0.5 * np.sin(g.x * 60 + 4 * value_noise(rng, g.size, 3))
    return np.where((g.y >= floor)[..., None], _mix((0.30, 0.18, 0.10), (0.42, 0.27, 0.15), boards), img)


def bg_table(rng, g: Grid):
    """A close-up of a light wooden table top: wavy grain, with a grey wall behind."""
    edge = rng.uniform(0.15, 0.3)
    grain = 0.5 + 0.5 * np.sin(g.y * rng.uniform(70, 100) + 5 * fractal_noise(rng, g.size, 3))
    wood = _mix((0.62, 0.42, 0.22), (0.78, 0.56, 0.32), grain)
    wall = _mix((0.55, 0.57, 0.60), (0.65, 0.67, 0.70), g.y / edge)
    return np.where((g.y < edge)[..., None], wall, wood)


def bg_water(rng, g: Grid):
    """Open water to the horizon: blue with bright wavy crests."""
    horizon = rng.uniform(0.1, 0.2)
    phase = 8 * fractal_noise(rng, g.size, 3)
    crest = np.sin(g.y * rng.uniform(45, 60) + np.sin(g.x * 12 + phase) * 1.5) > 0.85
    img = _mix((0.04, 0.25, 0.55), (0.10, 0.45, 0.75), g.y)
    img = np.where(crest[..., None], np.asarray((0.6, 0.8, 0.95), np.float32), img)
    return np.where((g.y < horizon)[..., None], np.asarray((0.8, 0.88, 0.96), np.float32), img)


def bg_street(rng, g: Grid):
    """Grey cobblestones (a jittered grid of rounded stones with dark joints)."""
    n = rng.integers(7, 10)
    gx, gy = g.x * n, g.y * n
    row = np.floor(gy)
    gx = gx + 0.5 * (row % 2)
    fx, fy = gx - np.floor(gx), gy - row
    joint = (np.minimum(fx, 1 - fx) < 0.08) | (np.minimum(fy, 1 - fy) < 0.08)
    shade = value_noise(rng, g.size, int(n) * 2)
    stone = _mix((0.45, 0.44, 0.42), (0.66, 0.64, 0.60), shade)
    return np.where(joint[..., None], np.asarray((0.20, 0.19, 0.18), np.float32), stone)


# ----------------------------------------------------------------------------- object primitives
def _rect(u, v, x0, x1, y0, y1):
    return (u >= x0) & (u <= x1) & (v >= y0) & (v <= y1)


def _ellipse(u, v, cx, cy, rx, ry):
    return ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2 <= 1


def _polygon(u, v, pts):
    """Inside a convex polygon whose corners are given in order (either way round)."""
    pos, neg = np.ones(u.shape, bool), np.ones(u.shape, bool)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
        side = (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0)
        pos &= side >= 0
        neg &= side <= 0
    return pos | neg


# ----------------------------------------------------------------------------- objects
# Each returns parts painted in order: (inside mask, shade) where shade is a factor on the base colour,
# or an absolute colour given as a 3-tuple. Coordinates: u right, v down, the object fills ~[-1, 1]^2.
def obj_ball(rng, u, v):
    """A sphere with a stripe and a highlight."""
    body = _ellipse(u, v, 0, 0, 0.9, 0.9)
    light = np.clip(1.05 - 0.35 * np.sqrt((u + 0.35) ** 2 + (v + 0.35) ** 2), 0.55, 1.0)
    tilt = rng.uniform(-0.6, 0.6)
    stripe = body & (np.abs(v - tilt * u) < 0.16)
    high = _ellipse(u, v, -0.35, -0.4, 0.18, 0.12)
    return [(body, light), (stripe, (0.97, 0.97, 0.97)), (high, (1.0, 1.0, 1.0))]


def obj_cup(rng, u, v):
    """A mug: a tapering body, a rim and a handle ring on one side."""
    body = _polygon(u, v, [(-0.6, -0.7), (0.6, -0.7), (0.45, 0.85), (-0.45, 0.85)])
    ring = _ellipse(u, v, 0.68, 0.0, 0.38, 0.42) & ~_ellipse(u, v, 0.68, 0.0, 0.2, 0.24) & (u > 0.45)
    rim = _ellipse(u, v, 0, -0.7, 0.6, 0.14)
    inner = _ellipse(u, v, 0, -0.7, 0.5, 0.09)
    shade = np.clip(1.0 - 0.25 * (u + 0.6), 0.7, 1.0)
    return [(ring, 0.8), (body, shade), (rim, 1.0), (inner, 0.45)]


def obj_box(rng, u, v):
    """A cube seen from above-left: three faces of three shades."""
    top = _polygon(u, v, [(-0.8, -0.45), (0.0, -0.85), (0.8, -0.45), (0.0, -0.05)])
    left = _polygon(u, v, [(-0.8, -0.45), (0.0, -0.05), (0.0, 0.9), (-0.8, 0.5)])
    right = _polygon(u, v, [(0.0, -0.05), (0.8, -0.45), (0.8, 0.5), (0.0, 0.9)])
    tape = right & (np.abs(u - 0.4) < 0.07)
    return [(left, 0.78), (right, 0.6), (top, 1.0), (tape, (0.9, 0.85, 0.7))]


def obj_robot(rng, u, v):
    """A boxy robot: head with two eyes and an antenna, a body with a panel, arms and legs."""
    head = _rect(u, v, -0.42, 0.42, -0.78, -0.2)
    antenna = _rect(u, v, -0.04, 0.04, -0.98, -0.78) | _ellipse(u, v, 0, -0.98, 0.08, 0.08)
    body = _rect(u, v, -0.55, 0.55, -0.15, 0.55)
    arms = _rect(u, v, -0.85, -0.6, -0.1, 0.4) | _rect(u, v, 0.6, 0.85, -0.1, 0.4)
    legs = _rect(u, v, -0.4, -0.12, 0.55, 0.95) | _rect(u, v, 0.12, 0.4, 0.55, 0.95)
    eyes = _ellipse(u, v, -0.18, -0.5, 0.09, 0.09) | _ellipse(u, v, 0.18, -0.5, 0.09, 0.09)
    panel = _rect(u, v, -0.25, 0.25, 0.05, 0.3)
    return [(antenna, (0.35, 0.35, 0.38)), (arms | legs, 0.7), (body, 0.9), (head, 1.0),
            (eyes, (0.05, 0.05, 0.05)), (panel, (0.85, 0.85, 0.88))]


def obj_dog(rng, u, v):
    """A side-on dog: body, head with a snout and an ear, four legs and a tail."""
    body = _ellipse(u, v, -0.1, 0.05, 0.64, 0.36)
    head = _ellipse(u, v, 0.55, -0.35, 0.28, 0.26)
    snout = _ellipse(u, v, 0.82, -0.28, 0.16, 0.11)
    nose = _ellipse(u, v, 0.96, -0.3, 0.05, 0.05)
    ear = _ellipse(u, v, 0.45, -0.42, 0.09, 0.2)
    eye = _ellipse(u, v, 0.62, -0.42, 0.045, 0.045)
    legs = (_rect(u, v, -0.62, -0.42, 0.15, 0.85) | _rect(u, v, -0.32, -0.12, 0.15, 0.85)
            | _rect(u, v, 0.12, 0.32, 0.15, 0.85) | _rect(u, v, 0.34, 0.54, 0.1, 0.85))
    tail = _polygon(u, v, [(-0.68, -0.05), (-0.95, -0.5), (-0.85, -0.55), (-0.6, 0.0)])
    return [(tail | legs, 0.72), (body, 0.92), (head | snout, 1.0), (ear, 0.6), (eye | nose, (0.05, 0.05, 0.05))]


def obj_car(rng, u, v):
    """A side-on car: a body, a cabin with windows and two black wheels with hubs."""
    body = _rect(u, v, -0.95, 0.95, -0.1, 0.4)
    cabin = _polygon(u, v, [(-0.5, -0.1), (-0.3, -0.55), (0.35, -0.55), (0.6, -0.1)])
    window = _polygon(u, v, [(-0.38, -0.15), (-0.24, -0.47), (0.02, -0.47), (0.02, -0.15)]) | \
        _polygon(u, v, [(0.1, -0.15), (0.1, -0.47), (0.3, -0.47), (0.47, -0.15)])
    wheels = _ellipse(u, v, -0.55, 0.42, 0.24, 0.24) | _ellipse(u, v, 0.55, 0.42, 0.24, 0.24)
    hubs = _ellipse(u, v, -0.55, 0.42, 0.09, 0.09) | _ellipse(u, v, 0.55, 0.42, 0.09, 0.09)
    light = _rect(u, v, 0.82, 0.95, 0.0, 0.1)
    return [(cabin, 0.85), (body, 1.0), (window, (0.7, 0.85, 0.95)), (wheels, (0.08, 0.08, 0.08)),
            (hubs, (0.75, 0.75, 0.75)), (light, (1.0, 0.95, 0.6))]


BACKGROUNDS: Dict[str, Callable] = dict(beach=bg_beach, snow=bg_snow, grass=bg_grass, night=bg_night,
                                        room=bg_room, table=bg_table, water=bg_water, street=bg_street)
OBJECTS: Dict[str, Callable] = dict(ball=obj_ball, cup=obj_cup, box=obj_box, robot=obj_robot, dog=obj_dog,
                                    car=obj_car)


@dataclass(frozen=True)
class Scene:
    """What to draw; the pose is drawn from ``seed`` unless given."""
    background: str
    cls: str
    colour: str
    seed: int


def render_scene(scene: Scene, size: int = 64, supersample: int = 2, objects: Dict[str, Callable] = None,
                 colours: Dict[str, Tuple[float, float, float]] = None):
    """Render ``scene`` -> (uint8 image (size, size, 3), float object mask (size, size) in [0, 1]).

    The object is 45-70 % of the canvas wide, centred in the lower middle, rotated up to 15 degrees,
    possibly mirrored, with a dark outline; the background is drawn with the same generator first.
    ``objects``/``colours`` extend the world (novel concepts) without changing its vocabulary.
    """
    objects = OBJECTS if objects is None else objects
    colours = COLOURS if colours is None else colours
    rng = np.random.default_rng(scene.seed)
    g = Grid(size * supersample)
    img = BACKGROUNDS[scene.background](rng, g).astype(np.float32)
    scale = rng.uniform(0.24, 0.36)
    cx, cy = rng.uniform(0.5 - 0.18, 0.5 + 0.18), rng.uniform(0.5, 0.62)
    theta = np.deg2rad(rng.uniform(-15, 15))
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    dx, dy = g.x - cx, g.y - cy
    u = mirror * (dx * np.cos(theta) + dy * np.sin(theta)) / scale
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / scale
    base = np.asarray(colours.get(scene.colour, (0.5, 0.5, 0.5)), np.float32) * rng.uniform(0.92, 1.05)
    parts = objects[scene.cls](rng, u, v)
    alpha = np.zeros(g.x.shape, bool)
    for inside, _ in parts:
        alpha |= inside
    outline = alpha & ~_erode(alpha, max(1, supersample))
    for inside, shade in parts:
        colour = np.asarray(shade, np.float32) if isinstance(shade, tuple) else base * np.asarray(shade)[..., None]
        img = np.where(inside[..., None], np.clip(colour, 0, 1), img)
    img = np.where(outline[..., None], img * 0.35, img)
    img = _downsample(img, supersample)
    mask = _downsample(alpha.astype(np.float32)[..., None], supersample)[..., 0]
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), mask


def _erode(m: np.ndarray, r: int) -> np.ndarray:
    out = m.copy()
    for _ in range(r):
        out[1:] &= out[:-1].copy()
        out[:-1] &= out[1:].copy()
        out[:, 1:] &= out[:, :-1].copy()
        out[:, :-1] &= out[:, 1:].copy()
    return out


def _downsample(img: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return img
    h, w, c = img.shape
    return img.reshape(h // k, k, w // k, k, c).mean(axis=(1, 3))


def contact_sheet(images: List[np.ndarray], cols: int) -> np.ndarray:
    """Tile equally sized uint8 images row-major (a quick look at the world)."""
    rows = -(-len(images) // cols)
    h, w, c = images[0].shape
    sheet = np.full((rows * h, cols * w, c), 255, np.uint8)
    for i, im in enumerate(images):
        r, q = divmod(i, cols)
        sheet[r * h:(r + 1) * h, q * w:(q + 1) * w] = im
    return sheet
