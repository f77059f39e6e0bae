"""Reference solutions, one module per assignment; solution bodies sit between nbgrader markers."""
