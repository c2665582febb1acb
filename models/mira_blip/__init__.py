"""Mira's BLIP tooling: Hugging Face-named BLIP modules, safetensors I/O and the ONNX bundle exporter.

Run modules from `models/` with Debian's torch interpreter, e.g.
`cd models && /usr/bin/python3 -m mira_blip.test_parity --ref /work/shared/reference/blip-parity`.
"""
