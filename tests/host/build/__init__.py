"""Host tests of image building groundwork: Debian bootstrap with mmdebstrap."""
