# libcamerasrc for the Raspberry Pi camera modules (imx708 = Camera Module 3); shipped in the
# libcamera-gst package.
PACKAGECONFIG:append:doorbell = " gst"
