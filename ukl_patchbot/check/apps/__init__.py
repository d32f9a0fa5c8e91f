"""A real, unmodified program as the booted system's only program, in both variants.

The probe proves the variants boot; this stage proves a program that was
never written for UKL runs: built from its distribution's source package
(`recipes` says how), as classic's /init or UKL's linked application, booted
with a NIC and judged by a request it answers from the host (`httpproof`).
"""
