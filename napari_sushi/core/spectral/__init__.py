"""Learned spectral models: one interface (base), emulator / IAE / reference families, training,
safe model files, the registry of shipped models, and grid matching against cubes.

Entry points: ``registry.load_model(name_or_path)``, ``registry.list_models()``,
``registry.match_model_to_cube(model, cube)``, ``training.train_model(...)``, ``files.save_model``.
"""
