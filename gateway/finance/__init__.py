"""Finance: the money the PARCS report, as balanced daily journals and accounting exports.

    accounts.py          the chart of accounts (configuration: `finance:` in the YAML file)
    ledger.py            transactions of a range of local days, per facility, from every PARCS
    journal.py           one balanced journal per facility, local day and currency
    formats.py           journals rendered for QuickBooks (IIF, Online CSV), SAP, Yardi, CSV, JSON
    citations_export.py  the municipal citation file
    http.py              GET /exports/journal and GET /exports/citations
"""
