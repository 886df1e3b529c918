"""pytest under chapters/ (``pytest chapters --nbval-lax``, tests/run.sh) runs the lecture notebooks only.

The student notebooks beside them (NN_name_student.ipynb, made by scripts/make_student_notebooks.py)
stop at their first exercise by design; tests/unit/test_student_notebooks.py checks them instead.
"""

collect_ignore_glob = ["*_student.ipynb"]
