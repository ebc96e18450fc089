"""Thai date formats: Django's long ones, and the short ones as the date field shows and reads them.

The year in every one of these is written in B.E. by ris/dates.py (the `date` filter and date_format);
here it is just "Y". Django's short Thai formats ("3 ธ.ค. 2026, 9:00") differ from what a clerk types
into a date field (03/12/2569): a date copied from a list is typed back as it reads. The clock is the
24-hour one with two digits, as on the English pages and the slips.
"""

DATE_FORMAT = "j F Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "j F Y H:i"
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
