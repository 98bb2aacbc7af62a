"""Views: plotly figures, readable tables, ipywidgets explorers and the Voila app.
The only folder that imports plotly, ipywidgets or voila.
"""
