import torch
from mmengine.model import BaseDataPreprocessor

from mmagic_vico.registry import MODELS


@MODELS.register_module()
class ViCoDataPreprocessor(BaseDataPreprocessor):
    """Stack image tensors, move them to the model's device and scale uint8 ``[0, 255]`` to ``[-1, 1]``."""

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = {}
        for key, value in data['inputs'].items():
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
                value = torch.stack(list(value))
            if isinstance(value, torch.Tensor) and value.dtype == torch.uint8:
                value = value.float() / 127.5 - 1
            inputs[key] = value
        return dict(inputs=inputs, data_samples=data.get('data_samples'))
