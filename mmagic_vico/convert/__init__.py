"""Weights between this project's layouts and the files other tools load: pure ``convert_<from>_to_<to>``
state-dict functions (diffusers' ``lora_conversion_utils`` style) and safe readers of others' files."""
