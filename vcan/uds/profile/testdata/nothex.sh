#!/bin/sh
echo "key: zz"
