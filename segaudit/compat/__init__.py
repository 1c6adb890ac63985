"""Drop-in modules for code written against other libraries' APIs.

``segaudit.compat.cleanlab`` mirrors ``cleanlab.segmentation``: switch with one import line.
"""
