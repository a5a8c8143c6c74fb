"""Benchmark: the local geocoder against addok on the same doors (Bruz) and the same queries."""
