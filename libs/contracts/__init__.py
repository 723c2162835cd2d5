"""What each part publishes on the events exchange: the data models and the catalogue of its events.

A producer builds its envelopes from its catalogue here, and a consumer parses the data
into the very same model, so both sides (and the AsyncAPI document) read one definition and
no part imports another. Consumers are tolerant readers: a field they do not know is
ignored, so adding a field never breaks one. Only pydantic and the catalogue type live here.
"""
