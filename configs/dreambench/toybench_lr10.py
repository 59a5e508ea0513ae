# The toy DreamBench's learning-rate check (docs/quality.md): configs/dreambench/toybench.py with every
# weight inside the UNet trained at 10x its toy recipe's rate (the paper's rate x 50), the same factor for
# every method that has such weights; the placeholder embeddings keep their rate, so Textual Inversion
# and the base are the table's rows as they are and are not run again here.
#   python tools/dreambench.py configs/dreambench/toybench_lr10.py --dreambench data/toybench --subjects all
_base_ = ['./toybench.py']

methods = dict(
    _delete_=True,
    vico='configs/vico/vico_toy.py',
    dreambooth='configs/dreambooth/dreambooth_toy.py',
    dreambooth_lora='configs/dreambooth/dreambooth_lora_toy.py')

train_options = dict(
    _delete_=True,
    vico={'optim_wrapper.paramwise_cfg.custom_keys.image_cross_attention.lr_mult': 0.1},  # 5e-5 -> 5e-4
    dreambooth={'optim_wrapper.optimizer.lr': 2.5e-4},  # 2.5e-5 -> 2.5e-4
    dreambooth_lora={'optim_wrapper.optimizer.lr': 5e-3})  # 5e-4 -> 5e-3

work_dir = 'work_dirs/toybench_lr10'
