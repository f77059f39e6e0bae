"""Spins forever while being imported."""


class Spin:
    while True:
        pass
