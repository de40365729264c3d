#!/usr/bin/env bash
# test_container_oci_adopt.sh with runc instead of crun.
OCI_RUNTIME=runc
source "$(dirname "$0")/test_container_oci_adopt.sh"
