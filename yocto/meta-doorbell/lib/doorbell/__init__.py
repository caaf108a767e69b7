# Python helpers for meta-doorbell recipes (loaded through `addpylib` in conf/layer.conf).
