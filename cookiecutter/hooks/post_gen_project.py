"""Keep the Lua source of a route handler only in a package of kind route."""

from pathlib import Path

KIND = {{ cookiecutter.kind | jsonify }}
LUA = Path({{ cookiecutter.__module | jsonify }}) / ("route_" + {{ cookiecutter.name | jsonify }} + ".lua")

if KIND != "route":
    LUA.unlink()
