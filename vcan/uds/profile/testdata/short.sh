#!/bin/sh
echo 0102
