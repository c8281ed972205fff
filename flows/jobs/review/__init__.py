"""The reviewer's page: one self-contained HTML file per dataset and day (`sentinel report`)."""
