"""The pages for people, on one origin (`OFFERSEAL_WEB_PORT`): server-rendered templates with
small bundled scripts. Today the verify page; the candidate's portal and HR's console come here
too."""
