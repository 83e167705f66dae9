"""Evaluation: measuring codecs on images through their real bytes, and choosing from the
measurements. Nothing here is imported by the codec or the command line's coding commands.

    rdcurve.py      a rate-distortion sweep from start to finish (`vqzip rd-curve`)
    points.py       the codings a sweep runs, and what each measures
    measures.py     the qualities a sweep can measure (PSNR, MS-SSIM, SSIMULACRA 2), and --metrics
    references.py   published curves (CompressAI's results layout) beside a sweep's, and --reference
    workers.py      a sweep's codings in worker processes, points in a serial run's order
    machine.py      how busy the machine was (whether timings are disturbed)
    progress.py     the time a sweep has left
    record.py       what a sweep ran on and with
    results.py      means per setting, and the files a sweep writes
    bdrate.py       Bjøntegaard delta rates, and their table
    plot.py         the rate-distortion figure
    baselines.py    the classical codecs measured beside vqzip
    validation.py   a models' sweep on the validation split (bench/validate_rd.py)
    levels.py       a family's quality levels from validation sweeps (bench/choose_levels.py)
    run_curve.py    a training run's validation curve (bench/run_curve.py)
"""
