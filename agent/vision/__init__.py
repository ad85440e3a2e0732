"""Model I/O for the agent: TFLite runtime wrapper, BlazeFace decode, alignment, embedders.

Nothing here imports a TFLite runtime or Pillow at module import; they are imported when a model
is loaded or an image decoded.
"""
