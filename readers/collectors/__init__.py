"""Field collectors: the M-Bus master and the store-and-forward MQTT publisher."""
