"""Old import path of labeling.services.exports.csv_safe, kept only until training imports the new one."""

from labeling.services.exports.csv_safe import FORMULA_PREFIXES, csv_cell, csv_dict, csv_row

__all__ = ["FORMULA_PREFIXES", "csv_cell", "csv_dict", "csv_row"]
