#!/bin/sh
echo "first run"
