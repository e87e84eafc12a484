"""The bottom layer: organisation (regions, clusters, sites), people and roles, audit trail.

Public face: ``services`` (writes), ``selectors`` (reads), ``roles`` (who may do
what), ``audit`` (recording changes), ``clock`` (the injectable clock).
"""
