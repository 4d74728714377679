"""pipeline.config templates shipped with odprep (see `odprep templates`)."""
