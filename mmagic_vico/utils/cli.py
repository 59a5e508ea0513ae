"""Command-line pieces the tools share."""


def add_sampling_args(parser, num_images: int = 1) -> None:
    """The sampler's flags: images per prompt, DDIM steps, guidance, size, seed."""
    parser.add_argument('--num-images', type=int, default=num_images, help='images per prompt')
    parser.add_argument('--steps', type=int, default=50, help='DDIM steps')
    parser.add_argument('--guidance', type=float, default=7.5, help='classifier-free guidance scale')
    parser.add_argument('--height', type=int, help='default: the model size (512 on SD 1.5)')
    parser.add_argument('--width', type=int)
    parser.add_argument('--seed', type=int, default=0)
