"""The service's endpoints, one router per area, each built for one app by its
``make_router(state)`` (:class:`walletfaq.service.state.ServiceState`): :mod:`.ask` (the
questions), :mod:`.entries` (the corpus and the admin edits), :mod:`.operations` (probes,
metrics, docs, playground). Their request and response models live beside them;
:mod:`.common` holds what they share.
"""
