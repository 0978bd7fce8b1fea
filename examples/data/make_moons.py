#!/usr/bin/env python3
"""Writes moons.csv: two interleaving half circles with Gaussian noise (1,000 points, seed 7),
the small two-class dataset of examples/tiny-trial.json and examples/small.json."""
import math
import random
import sys

rng = random.Random(7)
out = open(sys.argv[1] if len(sys.argv) > 1 else "moons.csv", "w")
out.write("x1,x2,label\n")
for i in range(1000):
    label = i % 2
    t = rng.uniform(0, math.pi)
    x, y = (math.cos(t), math.sin(t)) if label == 0 else (1 - math.cos(t), 0.5 - math.sin(t))
    out.write(f"{x + rng.gauss(0, 0.15):.5f},{y + rng.gauss(0, 0.15):.5f},{label}\n")
