"""Novel concepts for the toy DreamBench: objects of the world's classes that the base model never saw.

Each is one object of a known class (its ``initialize_token``) with a detail no single word of the
world carries: a pattern, an emblem, two-tone parts or an odd part, in colours outside the world's
six. They are drawn by the same renderer (same poses, sizes and backgrounds), so a concept folder
looks like a DreamBench subject folder: 4-6 photos of one thing in different scenes.
"""
from typing import Callable, Dict

import numpy as np

from .render import _ellipse, _polygon, _rect, obj_ball, obj_box, obj_car, obj_cup, obj_dog, obj_robot

TEAL, PINK, CREAM, NAVY, LIME, BROWN = ((0.05, 0.62, 0.62), (0.98, 0.45, 0.70), (0.97, 0.93, 0.80),
                                       (0.10, 0.14, 0.40), (0.70, 0.92, 0.20), (0.45, 0.28, 0.14))
#: the concepts' palette, none of it among the world's six colour words (lookalike negatives of the concept scorer)
NOVEL_COLOURS = {'teal': TEAL, 'pink': PINK, 'cream': CREAM, 'navy': NAVY, 'lime': LIME, 'brown': BROWN}


def _star(u, v, cx, cy, r):
    """A five-pointed star as the union of two overlapping triangles' worth of convex kites."""
    inside = np.zeros(u.shape, bool)
    for k in range(5):
        a = -np.pi / 2 + k * 2 * np.pi / 5
        tip = (cx + r * np.cos(a), cy + r * np.sin(a))
        left = (cx + 0.38 * r * np.cos(a - np.pi / 5), cy + 0.38 * r * np.sin(a - np.pi / 5))
        right = (cx + 0.38 * r * np.cos(a + np.pi / 5), cy + 0.38 * r * np.sin(a + np.pi / 5))
        inside |= _polygon(u, v, [(cx, cy), left, tip, right])
    return inside


def concept_checker_ball(rng, u, v):
    """A ball in a teal and cream checkerboard."""
    parts = obj_ball(rng, u, v)
    body = parts[0][0]
    checks = ((np.floor(u * 3) + np.floor(v * 3)) % 2 == 0) & body
    return [(body, TEAL), (checks, CREAM), (parts[2][0], (1.0, 1.0, 1.0))]


def concept_dotted_cup(rng, u, v):
    """A pink mug with white polka dots and a navy handle."""
    parts = obj_cup(rng, u, v)
    ring, body, rim, inner = (p[0] for p in parts)
    dots = body & ((((u * 4) % 1 - 0.5) ** 2 + ((v * 4 + 0.5 * np.floor(u * 4)) % 1 - 0.5) ** 2) < 0.07)
    return [(ring, NAVY), (body, PINK), (dots, (1.0, 1.0, 1.0)), (rim, PINK), (inner, (0.35, 0.12, 0.25))]


def concept_star_robot(rng, u, v):
    """A robot with a navy head on a lime body, one big eye, and a pink star on its chest."""
    antenna, limbs, body, head = (p[0] for p in obj_robot(rng, u, v)[:4])
    eye = _ellipse(u, v, 0, -0.5, 0.2, 0.17)
    pupil = _ellipse(u, v, 0.05, -0.5, 0.08, 0.08)
    star = _star(u, v, 0, 0.2, 0.3)
    return [(antenna, (0.35, 0.35, 0.38)), (limbs, NAVY), (body, LIME), (head, NAVY), (eye, (1.0, 1.0, 1.0)),
            (pupil, (0.05, 0.05, 0.05)), (star, PINK)]


def concept_gift_box(rng, u, v):
    """A cream box tied with a crossed pink ribbon and a bow on top."""
    parts = obj_box(rng, u, v)
    top, left, right = parts[2][0], parts[0][0], parts[1][0]
    ribbon_l = left & (np.abs(u + 0.4) < 0.08)
    ribbon_r = right & (np.abs(u - 0.4) < 0.08)
    ribbon_t = top & ((np.abs((u - 0.0) * 0.5 + (v + 0.45)) < 0.07) | (np.abs((u - 0.0) * 0.5 - (v + 0.45)) < 0.07))
    bow = _ellipse(u, v, -0.15, -0.55, 0.16, 0.09) | _ellipse(u, v, 0.15, -0.55, 0.16, 0.09)
    return [(left, (0.85, 0.80, 0.68)), (right, (0.70, 0.66, 0.55)), (top, CREAM), (ribbon_l | ribbon_r | ribbon_t, PINK),
            (bow, (0.85, 0.25, 0.55))]


def concept_spotted_dog(rng, u, v):
    """A cream dog with brown spots, a brown ear and a teal collar."""
    parts = obj_dog(rng, u, v)
    legs_tail, body, head, ear, eyes = (p[0] for p in parts)
    spots = body & ((np.sin(u * 11) * np.sin(v * 13 + 1.0)) > 0.55)
    collar = (head | body) & (np.abs(u - 0.33) < 0.07) & (v > -0.3) & (v < 0.0)
    return [(legs_tail, (0.88, 0.84, 0.72)), (body, CREAM), (spots, BROWN), (head, CREAM), (ear, BROWN),
            (collar, TEAL), (eyes, (0.05, 0.05, 0.05))]


def concept_racing_car(rng, u, v):
    """A navy car with a lime racing stripe, a roof rack and cream wheels' hubs."""
    parts = obj_car(rng, u, v)
    cabin, body, window, wheels, hubs, light = (p[0] for p in parts)
    stripe = body & (np.abs(v - 0.15) < 0.07)
    rack = _rect(u, v, -0.35, 0.4, -0.68, -0.6) | _rect(u, v, -0.3, -0.24, -0.62, -0.52) | \
        _rect(u, v, 0.28, 0.34, -0.62, -0.52)
    return [(rack, (0.2, 0.2, 0.2)), (cabin, NAVY), (body, NAVY), (stripe, LIME), (window, (0.7, 0.85, 0.95)),
            (wheels, (0.08, 0.08, 0.08)), (hubs, CREAM), (light, (1.0, 0.95, 0.6))]


#: concept folder name -> (class word = initialize_token, drawing)
CONCEPTS: Dict[str, tuple] = {
    'checker_ball': ('ball', concept_checker_ball),
    'dotted_cup': ('cup', concept_dotted_cup),
    'star_robot': ('robot', concept_star_robot),
    'gift_box': ('box', concept_gift_box),
    'spotted_dog': ('dog', concept_spotted_dog),
    'racing_car': ('car', concept_racing_car),
}


def concept_objects() -> Dict[str, Callable]:
    """The drawings keyed by concept name, for ``render_scene(..., objects=concept_objects())``."""
    return {name: draw for name, (_, draw) in CONCEPTS.items()}
